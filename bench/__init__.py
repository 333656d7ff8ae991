"""Benchmarks of tornado_progress: timing lives here, never in the pass/fail tests."""
