"""analytics.js served by Sluice: Segment's analytics-next browser build, from npm, so that a page
whose snippet names only Sluice's host loads nothing from Segment's CDN (docs/analytics-js.md)."""
