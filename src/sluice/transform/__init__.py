"""Protocols transformations (Segment's semantics, docs/protocols.md "Transformations"):
rename a Track event, rename or move properties and traits, set values, change a value's case.

Source-scoped transformations run at ingest (the log, archive, warehouses, lake and every
destination see the changed event, as at Segment where they are irreversible); destination
scoped ones run in that destination's consumer, after its filters. `compile` builds them once
per workspace version; `stages` wires them (and the PII controls) into ingest and delivery.
"""
