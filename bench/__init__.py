"""Benchmarks: a synthetic campaign of N members timed end to end (make bench)."""
