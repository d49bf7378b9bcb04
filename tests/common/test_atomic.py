"""common.atomic: file temporaries of killed writers are cleaned like folder temporaries."""
from __future__ import annotations

import os
import subprocess
import sys

from common import atomic

KILLED_FILE_WRITER = """
import os, sys
from common import atomic
with atomic.atomic_path(sys.argv[1]) as tmp:
    os.kill(os.getpid(), 9)
"""


def test_file_temporary_of_a_killed_writer_is_removed_on_the_next_write(tmp_path):
    out = tmp_path / "trajectory.parquet"
    killed = subprocess.run([sys.executable, "-c", KILLED_FILE_WRITER, str(out)], env={**os.environ})
    assert killed.returncode == -9
    [left] = tmp_path.glob(".trajectory.parquet.*.tmp")
    assert left.stat().st_size == 0  # the probe's 0-byte leftover
    legacy = tmp_path / ".trajectory.parquet.abcd1234.tmp"  # named before file temporaries carried a pid
    legacy.write_bytes(b"")
    neighbour = tmp_path / ".trajectory.parquet.json.77.abcd1234.tmp"  # another path's temporary: kept
    neighbour.write_bytes(b"")
    atomic.write_bytes(out, b"table")
    assert out.read_bytes() == b"table"
    assert sorted(p.name for p in tmp_path.iterdir()) == [neighbour.name, "trajectory.parquet"]


def test_file_temporary_of_a_live_writer_is_kept(tmp_path):
    out = tmp_path / "metrics.json"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        theirs = tmp_path / f".metrics.json.{live.pid}.abcd1234.tmp"
        theirs.write_bytes(b"")
        atomic.write_json(out, {"ok": True})
        assert theirs.exists()
    finally:
        live.kill()
        live.wait()


def test_a_file_temporary_in_use_by_this_process_is_kept(tmp_path):
    out = tmp_path / "per_item.parquet"
    with atomic.atomic_path(out) as outer:
        outer.write_bytes(b"outer")
        atomic.write_bytes(out, b"inner")  # a second writer of the same path in this process
        assert outer.read_bytes() == b"outer"
    assert out.read_bytes() == b"outer"
