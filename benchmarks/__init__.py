"""Performance benchmarks of adabit_lite: ``python -m benchmarks --help``.

Not part of the installed package: run from the repository root.  See benchmarks/README.md.
"""
