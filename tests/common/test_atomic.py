"""common.atomic: file temporaries of killed writers are cleaned like folder temporaries."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_a_file_write_is_one_line_and_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    monkeypatch.setattr(Path, "write_text", _enospc)
    with pytest.raises(atomic.DiskFullError) as error:
        atomic.write_text(out, "new")
    message = str(error.value)
    assert message.startswith(f"{out}: no space left on the device while writing it (")
    assert f"GB free in {tmp_path}); nothing was written" in message and "\n" not in message
    assert error.value.errno == errno.ENOSPC
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_full_disk_during_a_model_save_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys):
    """safetensors wraps ENOSPC in its own exception type: recognised by its message."""
    from evaluation import models
    from workflows import cli

    class SafetensorError(Exception):
        pass

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                              'message: "No space left on device" })')

    monkeypatch.setattr("transformers.modeling_utils.safe_save_file", full)
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    texts = ["alpha beta gamma", "delta epsilon"]
    out = tmp_path / "model"
    with pytest.raises(atomic.DiskFullError, match=rf"^{out}: no space left on the device"):
        models.build_tiny_llama(texts, out, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, num_key_value_heads=2)
    assert list(tmp_path.iterdir()) == []  # no half-written model folder, no temporary
    capsys.readouterr()  # the progress bar of the save
    monkeypatch.setattr(Path, "write_text", _enospc)
    data = tmp_path / "tofu-tiny"
    assert cli.main(["data", "generate", "--benchmark", "tofu-tiny", "--out", str(data)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"ubench data generate: error: {data}: no space left on the device while writing it")
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic.atomic_dir(tmp_path / "x"):
            1 / 0
    assert list(tmp_path.iterdir()) == []
