"""`python -m pneumonet_core.cli`: the same as the `pneumonet` command."""

import sys

from pneumonet_core.cli.main import main

sys.exit(main())
