"""Contract suites: one per port, each parametrized over every adapter of that port."""
