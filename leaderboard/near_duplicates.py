"""One run's results submitted twice: as two seeds of a row, or as another row (another method).

Two results are "the same" when their per-item tables (`per_item.parquet`, every scored item) agree
cell by cell within a relative tolerance, or, where either has no table, when their metrics do.
Equality alone is not enough: relabelled copies with 1e-9 or 1e-12 jitter differ in the last
digits only, while two real runs (another seed, another method) differ in the first few digits of
hundreds of per-item values. The tolerance sits far from both.

Checked: the seeds of one row (all results trees), and every pair of rows in one benchmark split
where at least one row is a submission's (a submission may not bring another row's numbers under
its own label). Rows of this suite's own grid are not compared across rows: a rectifier on an
objective with a single task loss (GA + PCGrad) legitimately gives GA + none's model bit for bit.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

RELATIVE_TOLERANCE = 1e-6   # jitter of 1e-9 / 1e-12 is inside; another run's numbers are far outside
ABSOLUTE_TOLERANCE = 1e-12  # for values at (or rounding to) zero
PER_ITEM = "per_item.parquet"


def _comparable(document: dict[str, Any]) -> bool:
    """A finished result with at least one metric (a diverged run carries nothing to compare)."""
    metrics = document.get("metrics") or {}
    return (document.get("status") or {}).get("state") == "ok" and any(v is not None for v in metrics.values())


def _close(a: Any, b: Any) -> bool:
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE,
                                                   equal_nan=True))


def _cells(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value


def _columns_match(x, y) -> bool:
    """One column of two tables: numbers within the tolerance, arrays of numbers likewise, the rest equal."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x) \
            and pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        return _close(x.to_numpy(), y.to_numpy())
    for a, b in zip(x, y):
        a, b = _cells(a), _cells(b)
        if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
            continue
        if isinstance(a, (list, float, int)) and isinstance(b, type(a)) and _close(a, b):
            continue
        return False
    return True


def tables_match(a, b) -> bool:
    if a.shape != b.shape or list(a.columns) != list(b.columns):
        return False
    return all(_columns_match(a[column].reset_index(drop=True), b[column].reset_index(drop=True))
               for column in a.columns)


def metrics_match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    present_a = {k: v for k, v in a.items() if v is not None}
    present_b = {k: v for k, v in b.items() if v is not None}
    return bool(present_a) and present_a.keys() == present_b.keys() and all(
        isinstance(present_a[k], (int, float)) and isinstance(present_b[k], (int, float))
        and _close(present_a[k], present_b[k]) for k in present_a)


class _Tables:
    """Per-item tables read once each (None: no table, a symbolic link, or an empty one)."""

    def __init__(self):
        self._cache: dict[Path, Any] = {}

    def get(self, metrics_path: Path):
        if metrics_path not in self._cache:
            self._cache[metrics_path] = self._read(metrics_path.with_name(PER_ITEM))
        return self._cache[metrics_path]

    @staticmethod
    def _read(path: Path):
        if not path.is_file() or path.is_symlink():
            return None
        import pandas as pd

        try:
            table = pd.read_parquet(path)
        except Exception:  # an unreadable table compares by metrics; it never crashes the validator
            return None
        table = table.drop(columns=[c for c in table.columns if c == "seed"])
        return table if len(table) else None


def same_results(a: tuple[Path, dict[str, Any]], b: tuple[Path, dict[str, Any]], tables: _Tables) -> str | None:
    """'per-item results' or 'metrics' when the two results are one run's; None when they differ."""
    table_a, table_b = tables.get(a[0]), tables.get(b[0])
    if table_a is not None and table_b is not None:
        return "per-item results" if tables_match(table_a, table_b) else None
    return "metrics" if metrics_match(a[1]["metrics"], b[1]["metrics"]) else None


def _describe(document: dict[str, Any]) -> str:
    identity = document["identity"]
    who = f", submitted by {identity['submitter']}" if identity.get("submitter") else ""
    role = identity["role"]
    what = f"{role} model" if role in ("target", "retain") else f"{identity['method']}+{identity['rectifier']}" + (
        f"+{identity['parametrization']}" if identity.get("parametrization", "full") != "full" else "")
    return f"{what} seed {identity['seed']}{who}"


def problems(documents: dict[Path, dict[str, Any]], row_key: Callable[[dict[str, Any]], tuple],
             shown: Callable[[Path], Any]) -> list[str]:
    """Messages for results that repeat another's: a seed that repeats an earlier seed of its row,
    and a submitted row whose results repeat another row's. `row_key` is everything but the seed."""
    tables = _Tables()
    found: list[str] = []
    items = [(path, document) for path, document in sorted(documents.items(), key=lambda item: str(item[0]))
             if _comparable(document)]
    rows: dict[tuple, list[tuple[Path, dict[str, Any]]]] = {}
    for item in items:
        rows.setdefault(row_key(item[1]), []).append(item)
    repeated: set[Path] = set()
    for members in rows.values():
        members.sort(key=lambda item: item[1]["identity"]["seed"])
        for index, later in enumerate(members):
            for earlier in members[:index]:
                what = same_results(earlier, later, tables)
                if what:
                    repeated.add(later[0])
                    found.append(f"{shown(later[0])}: identity.seed: seed {later[1]['identity']['seed']} has the "
                                 f"same {what} as seed {earlier[1]['identity']['seed']} ({shown(earlier[0])}); "
                                 "each seed must be a separate run")
                    break
    splits: dict[tuple, list[tuple[Path, dict[str, Any]]]] = {}
    for item in items:
        identity = item[1]["identity"]
        splits.setdefault((identity["benchmark"], identity["split"]), []).append(item)
    for members in splits.values():
        for index, later in enumerate(members):
            for earlier in members[:index]:
                submitted = later[1]["identity"].get("submitter") or earlier[1]["identity"].get("submitter")
                if not submitted or row_key(earlier[1]) == row_key(later[1]):
                    continue
                copy, original = (later, earlier) if later[1]["identity"].get("submitter") else (earlier, later)
                if copy[0] in repeated:
                    continue
                what = same_results(earlier, later, tables)
                if what:
                    repeated.add(copy[0])
                    found.append(f"{shown(copy[0])}: identity: the {what} of {_describe(copy[1])} are those of "
                                 f"another row, {_describe(original[1])} ({shown(original[0])}), within a relative "
                                 f"{RELATIVE_TOLERANCE:g}; submit results of your own runs only")
    return found

