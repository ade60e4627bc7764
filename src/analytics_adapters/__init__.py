"""Adapters: one folder per technology, each implementing core ports."""
