"""Pure domain of the inference usage analytics product: model, ports and use cases."""
