"""Pareto layers on two "bigger is better" axes (non-dominated sorting)."""
from __future__ import annotations


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])


def pareto_layers(points: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Layer 1 is the front; layer k is the front once layers < k are removed."""
    remaining = dict(points)
    layers: dict[str, int] = {}
    layer = 1
    while remaining:
        front = [key for key, p in remaining.items()
                 if not any(dominates(q, p) for other, q in remaining.items() if other != key)]
        for key in front:
            layers[key] = layer
            del remaining[key]
        layer += 1
    return layers
