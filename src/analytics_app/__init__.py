"""Application layer: config, DI container, HTTP driver, CLI and workers."""
