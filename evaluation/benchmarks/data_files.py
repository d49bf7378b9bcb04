"""Reading benchmark data files: UTF-8 text, one JSON document, or JSON rows, with errors that name
the file and the place (byte offset for bad UTF-8, line and column for bad JSON).

Shared by every benchmark's loader (TOFU, MUSE, WMDP, RWKU), each of which re-raises `DataFileError`
as its own error type with its schema hint. JSON rows come in three layouts (benchmarks.md §7): one
JSON array, JSON lines, or several JSON arrays one per line (the HF export of TOFU full/retainXX);
row order is preserved.
"""
from __future__ import annotations

import json
from pathlib import Path


class BenchmarkDataError(ValueError):
    """Benchmark data that is missing or breaks the benchmark's schema. Each benchmark raises its own
    subclass (with its schema hint), so callers can catch any benchmark's data error as this one."""


class DataFileError(ValueError):
    """A data file that is not UTF-8 text or not JSON; the message names the file and the place."""


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text (a BOM-less UTF-8 file, like every official release)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path} is not UTF-8 text (byte offset {error.start}: {error.reason}); "
                            "re-save it as UTF-8 or fetch the file again") from None


def _json_problem(path: Path, text: str, error: json.JSONDecodeError) -> str:
    """`path: line L is not JSON (...)`, saying when the text simply stops (a truncated file): the
    parser wanted more at the very end, or a string runs to the end (json's "Unterminated string")."""
    ends_early = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
    ending = ("; the file ends there: it is truncated (an interrupted download or copy?)" if ends_early and text.strip()
              else "; the file is empty" if not text.strip() else "")
    return f"{path}: line {error.lineno} is not JSON ({error.msg} at column {error.colno}, offset {error.pos}){ending}"


def read_json(path: str | Path):
    """One JSON document."""
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(_json_problem(path, text, error)) from None


def read_json_rows(path: str | Path) -> list:
    """Rows of a JSON array, JSON lines, or several JSON arrays one per line, in file order. A file
    whose first line is not JSON on its own is one document: its own parse error is reported (so a
    truncated array names where it stops, not "line 1 is not JSON")."""
    path = Path(path)
    text = read_text(path)
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError as error:
        document_error = error
    rows: list = []
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for position, (number, line) in enumerate(lines):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            if position == 0:
                raise DataFileError(_json_problem(path, text, document_error)) from None
            last = position == len(lines) - 1 and not text.endswith("\n")
            raise DataFileError(f"{path}: line {number} is not JSON ({error.msg} at column {error.colno})"
                                + ("; the file ends there: it is truncated" if last else "")) from None
        rows.extend(value if isinstance(value, list) else [value])
    return rows


def read_manifest(path: str | Path, benchmark: str, folder: str | Path, error: type[Exception]) -> tuple[dict, str]:
    """A tiny twin's generator manifest (a non-object reads as {}) and the regenerate hint that every
    error about it ends with; unreadable or corrupt JSON raises `error` naming both."""
    fix = f"regenerate the folder with `ubench data generate --benchmark {benchmark} --out {folder}`"
    try:
        content = read_json(path)
    except DataFileError as problem:
        raise error(f"corrupt {benchmark} manifest: {problem}; {fix}") from None
    return (content if isinstance(content, dict) else {}), fix
