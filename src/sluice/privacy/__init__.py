"""Privacy: Segment's regulations (suppression and deletion) and PII controls.

A regulation names subjects (user ids) and what to do with them: suppress their future events at
ingest, delete what Sluice holds of them (log, archive, warehouses, lake, profiles) and ask the
destinations that can delete to do so. Each place that holds data is a *target* with one
idempotent `delete` (`targets/`), so a deletion interrupted by kill -9 simply runs again.
See docs/privacy.md.
"""
