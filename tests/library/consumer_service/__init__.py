"""A minimal service that uses the product as a library: it imports only `analytics`."""
