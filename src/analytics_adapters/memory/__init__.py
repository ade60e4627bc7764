"""In-memory adapters: complete, thread-safe implementations of every port (tests and embedded mode)."""
