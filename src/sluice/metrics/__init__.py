"""Prometheus metrics: what each HTTP process measures (process.py), what the store knows of
the whole cluster (cluster.py), and the `/metrics` endpoint that joins them (endpoint.py)."""
