"""The raw archive: every processed event as gzip NDJSON in Segment's `segment-logs/` layout.

`writer.py` is a log consumer that writes the files, `layout.py` names them, `reader.py` reads a
time range back, and `replay.py` sends such a range to one destination through the delivery
engine. See docs/archive.md.
"""
