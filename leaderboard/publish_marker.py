"""The marker a local publish (`--target local:DIR`) leaves in DIR: how it knows DIR is its own.

A local publish replaces DIR/data, DIR/site, DIR/space and DIR/README.md, so it must never take a
folder for its own by a file name anyone could have (an unrelated `tags.json`). The marker,
`DIR/.ubench-publish.json`, holds the published tags and the tag being published now, and a
SHA-256 of that content: a file that is not the marker, or a marker edited by hand, does not
verify. It is written before anything in DIR is replaced, so a publish killed half-way leaves a
folder the rerun recognises and completes (`pending` names what was under way).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from common import atomic

NAME = ".ubench-publish.json"
WRITTEN_BY = "ubench leaderboard publish"
FORMAT = 1
MAX_BYTES = 1 << 20  # a marker holds one line per tag


def _checksum(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _body(tags: dict[str, Any], pending: str | None) -> dict[str, Any]:
    return {"written_by": WRITTEN_BY, "format": FORMAT, "tags": tags, "pending": pending}


def read(folder: Path) -> dict[str, Any] | None:
    """The verified marker of `folder` ({'tags': ..., 'pending': ...}); None when there is none or
    it does not verify (not our file, or edited)."""
    path = Path(folder) / NAME
    if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("tags"), dict):
        return None
    body = _body(marker["tags"], marker.get("pending"))
    if marker.get("written_by") != WRITTEN_BY or marker.get("format") != FORMAT \
            or marker.get("checksum") != _checksum(body):
        return None
    return body


def write(folder: Path, tags: dict[str, Any], pending: str | None) -> Path:
    body = _body(tags, pending)
    return atomic.write_json(Path(folder) / NAME, {**body, "checksum": _checksum(body)})
