"""Adapters: one folder per technology, each implementing core ports.

Internal: services that import the product use the public `analytics` module instead.
"""
