"""Which results are a submission's, and where each of its files must sit.

A submission is a folder `submissions/<name>/` (CONTRIBUTING.md): every metrics.json below it is
`<name>`'s and says so in `identity.submitter`, so its rows are always its own rows (`row_id` and
the duplicate checks carry the submitter) and never pool with this suite's rows or another
submitter's. Results this suite produces carry no submitter.

Inside a submission, every metrics.json sits where the result contract puts it,
`results/<benchmark>/<split>/<model>/<method>+<rectifier>[+<parametrization>]/seed<k>/` (or
`.../reference/<role>/`), so the folder names and the identity cannot say different things. In
other results trees the same is checked wherever a file sits in a `seed<k>` or `reference/<role>`
folder.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from common import contract

FOLDER = "submissions"
RESULTS = "results"
SEED_FOLDER = re.compile(r"^seed\d+$")
RUN_PARTS = ("benchmark", "split", "model", "method+rectifier[+parametrization]", "seed")
REFERENCE_PARTS = ("benchmark", "split", "model", "'reference'", "role")


def _submission_index(parts: tuple[str, ...]) -> int | None:
    """Index of `<name>` in `.../submissions/<name>/...` (the innermost such folder), else None."""
    return next((i for i in range(len(parts) - 1, 0, -1) if parts[i - 1] == FOLDER), None)


def submitter_of(path: Path) -> str | None:
    """`<name>` when `path` is `submissions/<name>` or below it; None for any other results folder."""
    parts = Path(path).absolute().parts
    index = _submission_index(parts)
    return None if index is None else parts[index]


def expected_folder(identity: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(folder names, what each one names) where the contract puts this identity's metrics.json;
    None when the identity is too broken to say (the schema check names what is wrong)."""
    try:
        if identity.get("role") in contract.REFERENCE_ROLES:
            return (contract.reference_dir("", identity["benchmark"], identity["split"], identity["model"],
                                           identity["role"]).parts, REFERENCE_PARTS)
        return (contract.run_dir("", identity["benchmark"], identity["split"], identity["model"], identity["method"],
                                 identity["rectifier"], identity["seed"], identity["parametrization"]).parts, RUN_PARTS)
    except (KeyError, TypeError, ValueError):
        return None


def _claims_layout(folder: Path) -> bool:
    return bool(SEED_FOLDER.match(folder.name)) or folder.parent.name == "reference"


def submitter_problems(document: dict[str, Any], submitter: str | None) -> list[str]:
    identity = document.get("identity")
    if submitter is None or not isinstance(identity, dict):
        return []
    declared = identity.get("submitter")
    if declared == submitter:
        return []
    if declared is None:
        return [f"identity.submitter: missing; every row of {FOLDER}/{submitter}/ carries its submitter, "
                f"add \"submitter\": \"{submitter}\" to identity (a submission's rows are never pooled "
                "with anyone else's)"]
    return [f"identity.submitter: {str(declared)[:64]!r} is not this submission's folder name "
            f"{submitter!r}; write \"submitter\": \"{submitter}\""]


def folder_problems(file: Path, document: dict[str, Any], submitter: str | None) -> list[str]:
    """The folders above `file` against its identity (method, rectifier, seed, ... = folder names)."""
    identity = document.get("identity")
    if not isinstance(identity, dict):
        return []
    expected = expected_folder(identity)
    if expected is None:
        return []
    names, meaning = expected
    folders = file.absolute().parent.parts
    if submitter is not None:
        top = _submission_index(folders)
        inside = folders[top + 1:] if top is not None else ()
        if inside[:1] != (RESULTS,) or len(inside) != len(names) + 1:
            where = "/".join((RESULTS, *names))
            return [f"<file>: a submission's metrics.json must sit at {FOLDER}/{submitter}/{where}/metrics.json "
                    "(the result contract's layout, named by its identity)"]
        actual = inside[1:]
    elif _claims_layout(file.absolute().parent) and len(folders) >= len(names):
        actual = folders[-len(names):]
    else:
        return []
    problems = []
    for folder, wanted, what in zip(actual, names, meaning):
        if folder != wanted:
            problems.append(f"identity: says {what} {wanted!r} but the file sits in folder {folder!r}; "
                            "the folder names and the identity must agree (copy the results tree as "
                            "ubench wrote it)")
    return problems
