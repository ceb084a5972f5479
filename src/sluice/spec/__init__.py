"""Segment's Spec: call types, validation and normalisation. Pure functions, no I/O."""
