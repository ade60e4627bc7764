"""Background loops that run beside or apart from the API: the export worker."""
