"""The dashboard (SPEC §14): server-rendered pages over the same use cases as the API.

`mount.mount_dashboard` adds its routes to the API's Falcon app, so the pages are served by
the same process at `/analytics/ui/`. The numbers on a page are rendered by the API's own
renderers (`analytics_app.http.render`) from the same reports.
"""
