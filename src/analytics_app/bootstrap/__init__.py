"""The composition root: the only code that builds adapters and binds use cases to them."""
