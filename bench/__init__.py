"""Benchmarks: each compares the service with a bare baseline run beside it."""
