"""Redis adapters (freshness cache)."""
