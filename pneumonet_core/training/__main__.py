"""`python -m pneumonet_core.training CONFIG`: run one training job (started by `jobs`)."""

import sys

from pneumonet_core.training.jobs import run_job

sys.exit(run_job(sys.argv[1]))
