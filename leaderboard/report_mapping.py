"""Which row of a paper config's grid reproduces which published row (the config's `report:` block).

A published row (leaderboard/data/published.yaml) names benchmark, split, model, role, method and
rectifier in the paper's words. `report.models` renames the model, `report.methods` renames a
`method+rectifier` pair where the grid runs it under another name; benchmark and split are kept.
Target and retain rows match the grid's reference models, unlearned rows its runs. A row the grid
does not run must be listed under `report.not_in_grid` with the reason (a listed row is not
compared even when the grid has a row of the same names, e.g. a second fine-tune of the target);
`unmapped` finds the rows that are neither (the tests require none for config/paper/*.yaml).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leaderboard import published

SELECTOR_FIELDS = ("source", "benchmark", "split", "model", "role", "method", "rectifier", "label")


@dataclass
class Match:
    """A published row and where it stands in the grid: `runs` (grid Run objects) or references."""

    row: dict[str, Any]
    grid_model: str
    grid_method: str | None            # objective of the grid (unlearned rows)
    grid_rectifier: str | None
    runs: list = field(default_factory=list)       # workflows.grid.Run
    reference: Any = None                          # workflows.grid.Reference
    excluded: str | None = None                    # reason from report.not_in_grid
    missing: str | None = None                     # why it is neither in the grid nor excluded

    @property
    def in_grid(self) -> bool:
        return bool(self.runs) or self.reference is not None


def report_block(config: dict[str, Any]) -> dict[str, Any]:
    block = dict(config.get("report") or {})
    block.setdefault("sources", [])
    block.setdefault("models", {})
    block.setdefault("methods", {})
    block.setdefault("not_in_grid", [])
    block.setdefault("claims", [])
    return block


def published_rows(block: dict[str, Any], path=published.PUBLISHED_PATH) -> list[dict[str, Any]]:
    """Rows of the block's sources, in published.yaml order; an unknown source id is an error."""
    rows = published.load(path)
    known = {row["source"] for row in rows}
    unknown = [s for s in block["sources"] if s not in known]
    if unknown:
        raise ValueError(f"report.sources: {', '.join(map(repr, unknown))} not in {path} "
                         f"(known: {', '.join(sorted(known))})")
    wanted = set(block["sources"])
    return [row for row in rows if row["source"] in wanted]


def _selected(value: Any, selector: Any) -> bool:
    options = selector if isinstance(selector, list) else [selector]
    return str(value) in {str(o) for o in options}


def exclusion(row: dict[str, Any], block: dict[str, Any]) -> str | None:
    for entry in block["not_in_grid"]:
        if all(_selected(row.get(key), sel) for key, sel in entry["when"].items()):
            return entry["reason"]
    return None


def grid_names(row: dict[str, Any], block: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(model, objective, rectifier) in the grid's names; objective/rectifier None for references."""
    model = block["models"].get(row["model"], row["model"])
    if row["role"] != "unlearned":
        return model, None, None
    pair = f"{row['method']}+{row['rectifier']}"
    method, _, rectifier = block["methods"].get(pair, pair).partition("+")
    return model, method, rectifier


def match(row: dict[str, Any], grid, block: dict[str, Any]) -> Match:
    model, method, rectifier = grid_names(row, block)
    found = Match(row, model, method, rectifier)
    if row["role"] == "unlearned":
        found.runs = [run for run in grid.runs
                      if (run.benchmark, run.split, run.model, run.objective, run.rectifier)
                      == (row["benchmark"], row["split"], model, method, rectifier)]
    else:
        for ref in grid.references:
            if (ref.benchmark, ref.split, ref.model) == (row["benchmark"], row["split"], model) \
                    and (row["role"] == "target" or ref.retain is not None):
                found.reference = ref
    reason = exclusion(row, block)
    if reason is not None:  # listed rows are not compared even where the grid has a namesake
        found.runs, found.reference, found.excluded = [], None, reason
    elif not found.in_grid:
        what = (f"{method}+{rectifier}" if row["role"] == "unlearned" else f"the {row['role']} model")
        found.missing = (f"no {what} on {row['benchmark']}/{row['split']}/{model} in this grid, and "
                         "no report.not_in_grid entry says why")
    return found


def match_all(config: dict[str, Any], grid) -> list[Match]:
    block = report_block(config)
    return [match(row, grid, block) for row in published_rows(block)]


def unmapped(config: dict[str, Any], grid) -> list[Match]:
    """Published rows of the config's sources that neither map to the grid nor are excluded."""
    return [m for m in match_all(config, grid) if m.missing]
