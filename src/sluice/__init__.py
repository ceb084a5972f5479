"""Sluice: a self-hosted customer data platform that speaks Segment's Tracking API."""

__version__ = "0.1.0"
