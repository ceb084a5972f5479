"""The Tracking API: every ingest path Segment's libraries use, served as one ASGI app."""
