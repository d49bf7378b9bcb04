"""Parametrizations: which parameters train and how the reference model is evaluated."""
