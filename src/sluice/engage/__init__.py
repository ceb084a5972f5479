"""Engage: computed traits and audiences over the identity graph's profiles (docs/engage.md)."""
