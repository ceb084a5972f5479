"""Webhook (cloud app) sources: third-party tools' webhooks verified and turned into Spec events."""
