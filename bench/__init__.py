"""Benchmarks that print counts and ratios measured in one run (see the README)."""
