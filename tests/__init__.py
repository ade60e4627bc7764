"""Test suite package (lets contract backends and helpers import each other as `tests.…`)."""
