"""A Parquet data lake laid out as Segment Data Lakes (see docs/lake.md).

`LakeBackend` (backend.py) is a warehouse backend: the warehouse loader plans each chunk of the
log with Segment's naming and types, and the lake writes it as Parquet files partitioned by
source, collection, day and hour (layout.py, parquet.py) into a `LakeStorage` (storage.py; a
local directory today), then commits by replacing its manifest (manifest.py). Compaction
(compaction.py) merges a partition's small files; query.py lets DuckDB read the lake.
"""
