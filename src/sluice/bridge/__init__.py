"""The bridge to Segment's own destination catalogue (`@segment/action-destinations`, npm).

Sluice runs Segment's JavaScript in one Node sidecar per worker process instead of porting
216 destinations by hand (docs/bridge.md). `install` puts the pinned package in the data dir,
`catalog` describes what it holds without starting Node, `sidecar` runs it, every HTTP request
it makes comes back to Python, and `outcomes` turns what it reports into delivery verdicts.
"""
