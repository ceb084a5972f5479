"""The identity graph: which events belong to which person (or account), and their profiles.

A log consumer (one per workspace, by lease in the worker's batch lane) reads every event,
finds its external ids (`extract.py`) under the workspace's rules (`rules.py`), resolves them to
a profile with Segment's flat matching, limits, priorities and merge guard (`graph.py`), and
keeps profiles, identities, traits, an index of each profile's events and the merges in tables
of its own (`tables.py`, `state.py`), committed with its position in one transaction
(`consumer.py`): exactly once, and a rebuild from the log gives the same profile ids.
See docs/identity.md.
"""
