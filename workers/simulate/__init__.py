"""Synthetic traffic for demos, benchmarks and tests (the seeds' sim.chaos / sim.load)."""
