"""The dashboard of `swarm serve`: the fleet on a web page, live, with the CLI's actions behind a token and
CSRF. Server-rendered (Jinja2, autoescaped), one small static script for live updates; no build step and
nothing fetched from the internet. :func:`orchestrator.dashboard.routes.dashboard_routes` gives the routes
that ``build_app`` mounts next to the webhook endpoint."""
