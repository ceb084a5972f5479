"""Protocols: tracking plans in Segment's shape, enforced per source at ingest (docs/protocols.md).

`plan` parses and compiles a plan's rules (JSON Schema, `fastjsonschema`), `enforce` applies a
source's plan and settings to one event, `ingest` records what it did in the collector's batch,
`counters` reads violations back, `segment_import` reads Segment's tracking plan exports.
"""
