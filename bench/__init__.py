"""Benchmarks of Estafette: bulk-loaded registers and timed pages and operations.

Run ``python -m bench.run --help`` from the repository root. The benchmark is
kept out of the test suite on purpose: its figures depend on the machine.
"""
