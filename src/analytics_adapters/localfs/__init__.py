"""Local-directory object store for the embedded mode."""
