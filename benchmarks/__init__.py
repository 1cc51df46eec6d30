"""Benchmarks: the factory against a named floor in the same run (see README, "Benchmarks")."""
