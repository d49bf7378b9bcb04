"""Rectifiers (gradient combiners): one file each, registered in methods.registry.RECTIFIERS."""
