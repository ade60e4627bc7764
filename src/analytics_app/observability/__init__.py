"""Metrics, tracing, logs and the status server, set up the same way in every process."""
