"""Atomic file writes: a reader (or a killed run) never sees a half-written result.

Every result file goes through here: write to a temporary sibling, fsync, then rename. A full disk
(ENOSPC, also as wrapped by safetensors or torch) removes the temporary and raises DiskFullError, one
line naming the path and the free space left, instead of a library traceback.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Standard JSON (NaN/inf become null), sorted keys for stable hashes and diffs."""
    plain = json.loads(json.dumps(obj, default=_json_default))
    return json.dumps(_finite_or_none(plain), indent=indent, sort_keys=True, allow_nan=False)


class DiskFullError(OSError):
    """The disk filled up while writing `path` atomically; the temporary was removed, `path` is untouched."""


# Libraries wrap ENOSPC in their own exception types: safetensors' SafetensorError ("IoError(Os { code:
# 28, kind: StorageFull, ... })"), torch's RuntimeError ("PytorchStreamWriter failed writing file").
DISK_FULL_TEXTS = ("No space left on device", "StorageFull", "code: 28,")


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC, directly or wrapped by a library (its message, or a cause/context in the chain)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if any(text in str(error) for text in DISK_FULL_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_error(path: Path) -> DiskFullError:
    """One line naming what was being written, the folder and its free space (after the cleanup)."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e9:,.2f} GB free"
    except OSError:
        free = "free space unknown"
    error = DiskFullError(f"{path}: no space left on the device while writing it ({free} in {path.parent}); "
                          "nothing was written. Free disk space, or point work_dir / results_dir at a "
                          "larger disk, and run again")
    error.errno = errno.ENOSPC
    return error


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The temporary's name carries this process id, and temporaries of earlier writers of `path` that
    were killed (their process is gone) are removed first, as `atomic_dir` does for folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _IN_USE.add(tmp_path)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except Exception as error:
        if not is_disk_full(error):
            raise
        tmp_path.unlink(missing_ok=True)  # before measuring the free space
        raise disk_full_error(path) from error
    finally:
        _IN_USE.discard(tmp_path)
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, dumps(obj) + "\n")


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> Path:
    return write_text(path, "".join(dumps(row, indent=None) + "\n" for row in rows))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary siblings of `path` left by killed writers (`.<name>.<pid>.<random>.tmp`).

    A writer that is killed (SIGKILL, OOM, a cancelled cluster job) never reaches its `finally`, so
    its temporary file or folder would stay forever. Each name records the writer's process id;
    temporaries of processes that are gone are removed on the next write. Those without a pid
    (written before this naming) have no live owner to ask and are removed too, as are those of this
    process that are no longer in use (an exception cleans up after itself, so these only exist
    after a kill).
    """
    path = Path(path)
    removed = []
    for candidate in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        # exactly `<pid>.<mkdtemp letters>` or (older) `<mkdtemp letters>`: never another file's temporary
        match = TEMPORARY_MIDDLE.match(candidate.name[len(path.name) + 2:-len(".tmp")])
        if match is None:
            continue
        owner = int(match.group(1)) if match.group(1) else None
        if owner is not None and owner != os.getpid() and _pid_alive(owner):
            continue
        if owner == os.getpid() and candidate in _IN_USE:
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


TEMPORARY_MIDDLE = re.compile(r"^(?:(\d+)\.)?[a-z0-9_]{8}$")


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


_IN_USE: set[Path] = set()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a whole folder (e.g. a saved model) in a temporary sibling, then rename it into place.

    Temporary folders left by killed earlier writers of the same `path` are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    _IN_USE.add(tmp)
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except Exception as error:
        if not is_disk_full(error):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # before measuring the free space
        raise disk_full_error(path) from error
    finally:
        _IN_USE.discard(tmp)
        if tmp.exists():
            shutil.rmtree(tmp)
