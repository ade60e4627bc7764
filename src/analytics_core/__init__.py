"""Pure domain of the inference usage analytics product: model, ports and use cases.

Internal: services that import the product use the public `analytics` module instead.
"""
