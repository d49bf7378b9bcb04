"""The unlearning engine: objectives, rectifiers, parametrizations, analyzers and one training loop.

See methods/README.md. Public entry point: `from methods.train import TrainConfig, train`.
"""
