"""The stream consumer process: partition ownership, partition workers, replay, status."""
