"""The Falcon WSGI driver of the analytics API (SPEC §5, §6), its gunicorn server and runtime.

Importing this package loads nothing: `http.app.create_app` builds the application, and
`http.server` must be importable before prometheus_client is (it sets the metrics directory).
"""
