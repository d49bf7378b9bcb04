"""Metrics: small pure functions over per-item values that the harness caches (metrics.md)."""
