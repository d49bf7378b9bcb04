"""Analyzers: read-only probes on the reduced task gradients (G-effect, geometry)."""
