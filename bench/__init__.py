"""Benchmarks of the platform (see `foundation.py`)."""
