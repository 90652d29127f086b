"""Benchmarks against peers: every bench prints a table and appends JSON records to runs/bench/."""
