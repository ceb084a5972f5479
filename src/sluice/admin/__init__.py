"""The admin API: JSON REST under /api/v1 for everything the CLI and the UI can do."""
