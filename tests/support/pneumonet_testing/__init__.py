"""Test support shared by the browser tests (`tests/e2e/`) and the benchmarks (`bench/`).

Not part of the product: nothing in `pneumonet_core` or `dashboard` imports it, and the
product's wheel does not contain it. `./run` installs it on its own (`tests/support/`), so the
tests and the benchmark scripts import the same helpers without touching `sys.path`.
"""
