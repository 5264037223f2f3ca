"""Test support shared by the browser tests (`tests/e2e/`) and the benchmarks (`bench/`).

Not part of the product: nothing in `pneumonet_core` or `dashboard` imports it. It is installed
with the project (`pip install -e .`) so that both the tests and the benchmark scripts import the
same helpers as a package, without touching `sys.path`.
"""
