"""PII controls (Segment's Privacy Portal, docs/privacy-pii.md): fields of `context`, `traits`
and `properties` classified Red or Yellow by Segment's default matchers and the workspace's
custom ones, then blocked (removed) or hashed (SHA-256, hex) per destination, or at ingest per
source."""
