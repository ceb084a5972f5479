"""Destinations: one module per destination, found through the registry."""
