"""Application layer: composition root, config, observability, and one folder per process
(HTTP, stream consumer, workers, CLI).

Internal: services that import the product use the public `analytics` module instead.
"""
