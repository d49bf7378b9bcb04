"""`ubench evaluate --item-cap N`: every eval set (file) of a benchmark scored on its first N items.

For smoke tests and quick looks at a real model (TOFU `full` scores every row, WMDP all 17,710
questions). TOFU and WMDP cap through their evaluator variant / lm-eval limit, MUSE through
`MuseData.head` (ICL sets and raw corpora whole), RWKU through `CappedData`, a view of its data object
that cuts every row list it hands out. The cap is recorded as `item_cap` in the evaluator block; a capped result is not comparable
with an uncapped one (the leaderboard groups by `item_cap`).
"""
from __future__ import annotations


def check_item_cap(cap: int | None) -> int | None:
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(f"--item-cap must be a positive number of items per eval set, got {cap!r}")
    return cap


def combined_cap(own: int | None, requested: int | None) -> int | None:
    """A variant's own cap (TOFU legacy: 300 rows) and the requested one: the smaller wins."""
    caps = [c for c in (own, requested) if c is not None]
    return min(caps) if caps else None


class CappedData:
    """A read-only view of RWKU data whose row lists are cut to their first `cap` items per target and
    file (`rows` / `rows_for` / `texts`); everything else is the wrapped object's."""

    def __init__(self, data, cap: int):
        self._data, self._cap = data, check_item_cap(cap)

    def _cut(self, value):
        return value[:self._cap] if isinstance(value, (list, tuple)) else value

    def rows(self, *args, **kwargs):
        return self._cut(self._data.rows(*args, **kwargs))

    def rows_for(self, target_ids, name: str) -> list:
        return [row for target_id in target_ids for row in self.rows(target_id, name)]

    def texts(self, target_ids, name: str) -> tuple:
        return tuple(row["text"] for row in self.rows_for(target_ids, name))

    def __getattr__(self, name):
        return getattr(self._data, name)
