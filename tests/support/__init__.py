"""Helpers for the test tiers and the benchmarks: paths to the shared data, waiting, real servers."""
