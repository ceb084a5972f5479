"""The web UI: server-rendered pages (Starlette + Jinja2) served by `sluice serve` at /."""
