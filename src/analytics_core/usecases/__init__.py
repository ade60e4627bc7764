"""Use cases: application services over the ports."""
