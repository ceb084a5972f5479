"""Segment's Profile API, served by Sluice: `/v1/spaces/<space>/collections/...` (docs/identity.md).

`reads.py` turns the identity tables (and the log, for events) into Segment's response bodies;
`app.py` is the HTTP edge: Basic auth with a Profile API token, parameters, cursors, errors.
"""
