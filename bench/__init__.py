"""Benchmarks: `python -m bench [NAME...]` runs them, prints a table, writes JSON results."""
