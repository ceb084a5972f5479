"""Backups of one machine's data taken while `sluice serve` runs (`take.py`), their manifest
(`manifest.py`) and restoring one into an empty data dir (`restore.py`). See
docs/operations.md."""
