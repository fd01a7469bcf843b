"""Evaluation: benchmarks, backends, the resumable store and the runner."""
