"""Benchmark scripts: they print figures; they are not tests (see drain_benchmark.py)."""
