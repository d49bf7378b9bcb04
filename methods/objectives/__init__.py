"""Objectives: one file each, registered by name in methods.registry.OBJECTIVES."""
