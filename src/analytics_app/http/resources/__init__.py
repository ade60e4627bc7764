"""Thin Falcon resources: parse, authorize, call one use case, render."""
