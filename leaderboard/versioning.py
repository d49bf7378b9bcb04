"""Content hash, semantic version and changelog of a leaderboard build.

Bump rule (previous build -> this build):
  * table format or fixed columns changed (schema)      -> major  (x+1.0.0)
  * any row removed, or any value of an existing row changed -> minor (x.y+1.0)
  * only rows added                                      -> patch  (x.y.z+1)
  * identical content hash                               -> same version, empty changelog
The first build is 1.0.0. The hash covers the canonical table only (no timestamps, no paths) and
leaves out the costs a machine measures (`aggregate.MEASURED_COSTS`: wall-clock seconds, peak
memory): rerunning the same results on a busier machine or another allocator is the same table,
so it keeps its hash and version and shows no changed rows. A build with metric meta-evaluation tables
(leaderboard/metric_tables.py) hashes them in as well: new or changed tables alone are a patch, so
they get a version of their own to publish under; a build without them hashes as before.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from leaderboard.aggregate import FIXED_COLUMNS, MEASURED_COSTS, TABLE_FORMAT

FIRST_VERSION = "1.0.0"
SIGNIFICANT_DIGITS = 12  # last-bit float noise across platforms must not change the hash
MEASURED_COLUMNS = frozenset(f"cost:{name}" for name in MEASURED_COSTS)


def _results_only(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in MEASURED_COLUMNS}


def _stable(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value


def canonical_rows(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    return [{c: _stable(row.get(c)) for c in columns} for row in sorted(rows, key=lambda r: r["row_id"])]


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def schema_fingerprint() -> str:
    return _sha256({"table_format": TABLE_FORMAT, "fixed_columns": list(FIXED_COLUMNS)})


def content_hash(canonical: list[dict[str, Any]], columns: list[str], metric_tables_hash: str | None = None) -> str:
    content = {"table_format": TABLE_FORMAT, "columns": [c for c in columns if c not in MEASURED_COLUMNS],
               "rows": [_results_only(row) for row in canonical]}
    if metric_tables_hash is not None:
        content["metric_tables"] = metric_tables_hash
    return _sha256(content)


def metric_tables_change(previous: dict[str, Any] | None, metric_tables_hash: str | None) -> str | None:
    """added / changed / removed: how the meta-evaluation tables differ from the previous build's."""
    before = (previous or {}).get("metric_tables_hash")
    if before == metric_tables_hash:
        return None
    if before is None:
        return "added"
    return "removed" if metric_tables_hash is None else "changed"


def row_hashes(canonical: list[dict[str, Any]]) -> dict[str, str]:
    """Per-row hash over the row's non-null cells (a new metric column elsewhere changes nothing)."""
    return {row["row_id"]: _sha256({k: v for k, v in _results_only(row).items() if v is not None})
            for row in canonical}


def bump(version: str, level: str) -> str:
    major, minor, patch = (int(part) for part in version.split("."))
    if level == "major":
        return f"{major + 1}.0.0"
    if level == "minor":
        return f"{major}.{minor + 1}.0"
    if level == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return version


def load_previous(path: str | Path | None) -> dict[str, Any] | None:
    """A prior build folder (containing version.json) or a version.json file itself."""
    if path is None:
        return None
    path = Path(path)
    file = path / "version.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"--previous {path}: no version.json there; pass a prior build "
                                "folder or its version.json")
    return json.loads(file.read_text(encoding="utf-8"))


def _changed_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return []
    return sorted(k for k in (set(old) | set(new)) - MEASURED_COLUMNS
                  if old.get(k) != new.get(k) and not (old.get(k) is None and new.get(k) is None))


def version_record(canonical: list[dict[str, Any]], columns: list[str],
                   previous: dict[str, Any] | None,
                   previous_rows: dict[str, dict[str, Any]] | None = None,
                   metric_tables_hash: str | None = None) -> dict[str, Any]:
    """version.json content: version, hashes, and the changes since `previous`."""
    digest = content_hash(canonical, columns, metric_tables_hash)
    hashes = row_hashes(canonical)
    fingerprint = schema_fingerprint()
    record: dict[str, Any] = {
        "content_hash": digest, "schema_fingerprint": fingerprint, "table_format": TABLE_FORMAT,
        "row_hashes": hashes, "n_rows": len(canonical),
    }
    if metric_tables_hash is not None:
        record["metric_tables_hash"] = metric_tables_hash
    tables_change = metric_tables_change(previous, metric_tables_hash)
    if tables_change is not None:
        record["metric_tables_change"] = tables_change
    if previous is None:
        record.update(version=FIRST_VERSION, bump="initial", previous_version=None,
                      changes={"added": sorted(hashes), "changed": {}, "removed": []})
        return record
    old = previous["row_hashes"]
    by_id = {row["row_id"]: row for row in canonical}
    added = sorted(set(hashes) - set(old))
    removed = sorted(set(old) - set(hashes))
    changed = {rid: _changed_fields((previous_rows or {}).get(rid), by_id[rid])
               for rid in sorted(set(hashes) & set(old)) if hashes[rid] != old[rid]}
    if previous.get("content_hash") == digest:
        level = "none"
    elif previous.get("schema_fingerprint") != fingerprint:
        level = "major"
    elif removed or changed:
        level = "minor"
    elif added:
        level = "patch"
    else:  # only a null-only column appeared or vanished: still a different table
        level = "patch"
    record.update(version=bump(previous["version"], level), bump=level,
                  previous_version=previous["version"],
                  changes={"added": added, "changed": changed, "removed": removed})
    return record


def changelog_entry(record: dict[str, Any]) -> str:
    changes = record["changes"]
    lines = [f"## {record['version']} ({record['bump']})", "",
             f"content hash `{record['content_hash']}`; {record['n_rows']} rows"]
    if record.get("previous_version"):
        lines[-1] += f"; previous version {record['previous_version']}"
    lines.append("")
    for rid in changes["added"]:
        lines.append(f"- added `{rid}`")
    for rid, fields in changes["changed"].items():
        lines.append(f"- changed `{rid}`" + (f": {', '.join(fields)}" if fields else ""))
    for rid in changes["removed"]:
        lines.append(f"- removed `{rid}`")
    if record.get("metric_tables_change"):
        lines.append(f"- metric meta-evaluation tables {record['metric_tables_change']}")
    if not any(changes.values()) and not record.get("metric_tables_change"):
        lines.append("- no changes")
    return "\n".join(lines) + "\n"
