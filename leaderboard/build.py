"""`ubench leaderboard build`: results folders -> a versioned build folder (tables + web page).

Layout of a build folder:
    leaderboard.parquet / .csv / .json   the table (one row per method and reference model)
    version.json                         version, content hash, row hashes, changes since previous
    CHANGELOG.md                         newest entry first, older entries carried over
    metric_tables.json                   benchmark -> its metric meta-evaluation table, when the results
                                         folders hold any (leaderboard/metric_tables.py)
    index.html, assets/                  the offline web page (see leaderboard/page.py)
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from common import atomic
from leaderboard import aggregate, metric_tables, page, published, published_attacks, versioning

TABLE_FILES = ("leaderboard.parquet", "leaderboard.csv", "leaderboard.json")
INTEGER_COLUMNS = ("n_seeds", "item_cap", "pareto_rank", "matched_rank")
FLOAT_COLUMNS = ("matched_level", "utility_at_matched", "utility_at_matched_ci_low", "utility_at_matched_ci_high")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); submitted
# text (display names, flags, hardware labels) reaches the CSV, so such cells get a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(frame: pd.DataFrame) -> str:
    """The table as CSV with text cells escaped for spreadsheets (Parquet and JSON keep them as is)."""
    text_columns = [c for c in frame.columns
                    if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]
    safe = frame.copy()
    for column in text_columns:
        safe[column] = safe[column].map(spreadsheet_safe)
    return safe.to_csv(index=False)


def table_frame(canonical: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(canonical, columns=columns)
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    frame["comparable"] = frame["comparable"].astype(bool)
    for column in columns:
        if column.startswith(("metric:", "cost:")) or column in FLOAT_COLUMNS:
            frame[column] = frame[column].astype("float64")
    return frame


def _previous_rows(previous_path: Path | None) -> dict[str, dict[str, Any]] | None:
    if previous_path is None:
        return None
    folder = previous_path if previous_path.is_dir() else previous_path.parent
    table = folder / "leaderboard.json"
    if not table.is_file():
        return None
    return {row["row_id"]: row for row in json.loads(table.read_text(encoding="utf-8"))["rows"]}


def _previous_changelog(previous_path: Path | None) -> str:
    if previous_path is None:
        return ""
    folder = previous_path if previous_path.is_dir() else previous_path.parent
    file = folder / "CHANGELOG.md"
    if not file.is_file():
        return ""
    text = file.read_text(encoding="utf-8")
    return text.split("\n", 2)[2] if text.startswith("# Changelog") else text


def _check_out_folder(out: Path) -> None:
    """The build replaces `out` wholesale, so never let it be a folder that is not a build."""
    if out.exists() and any(out.iterdir()) and not (out / "version.json").is_file():
        raise FileExistsError(f"--out {out} exists, is not empty and is not a leaderboard build; "
                              "choose an empty or new folder (e.g. site/)")


def build(results: list[str | Path], out: str | Path, previous: str | Path | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Aggregate, version and write a build folder atomically; returns version.json's content."""
    out = Path(out)
    _check_out_folder(out)
    if previous is None and (out / "version.json").is_file():
        previous = out  # rebuilding in place continues that build's version line
    previous_path = Path(previous) if previous is not None else None
    previous_record = versioning.load_previous(previous_path)
    previous_rows = _previous_rows(previous_path)
    old_changelog = _previous_changelog(previous_path)

    documents = aggregate.load_results([Path(r) for r in results])
    tables = metric_tables.load([Path(r) for r in results])
    rows = aggregate.aggregate(documents)
    columns = aggregate.columns(rows)
    canonical = versioning.canonical_rows(rows, columns)
    record = versioning.version_record(canonical, columns, previous_record, previous_rows,
                                       metric_tables.digest(tables))
    if record["bump"] == "none":
        changelog = f"# Changelog\n\n{old_changelog}" if old_changelog else \
            "# Changelog\n\n" + versioning.changelog_entry(record)
    else:
        changelog = "# Changelog\n\n" + versioning.changelog_entry(record) + \
            ("\n" + old_changelog if old_changelog else "")
    meta = {"version": record["version"], "content_hash": record["content_hash"],
            "table_format": record["table_format"],
            "main_evaluator_variants": aggregate.main_variants(documents)}

    frame = table_frame(canonical, columns)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    with atomic.atomic_dir(out) as tmp:
        (tmp / "leaderboard.parquet").write_bytes(parquet.getvalue())
        (tmp / "leaderboard.csv").write_text(csv_text(frame), encoding="utf-8")
        (tmp / "leaderboard.json").write_text(
            atomic.dumps({**meta, "columns": columns, "rows": canonical}) + "\n", encoding="utf-8")
        (tmp / "version.json").write_text(atomic.dumps(record) + "\n", encoding="utf-8")
        (tmp / "CHANGELOG.md").write_text(changelog, encoding="utf-8")
        if tables:
            (tmp / metric_tables.BUILD_FILE).write_text(atomic.dumps(tables) + "\n", encoding="utf-8")
        page.write_page(tmp, meta=meta, columns=columns, rows=canonical,
                        published_rows=published_attacks.with_attack_columns(published.load()),
                        changes=record["changes"], metric_tables=tables)
    return record
