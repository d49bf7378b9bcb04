"""Bad benchmark data and killed writers (issue #15): the file, row and field are named."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from common import atomic
from evaluation.benchmarks.tofu import data as tofu, tiny as tofu_tiny


def _row(**change):
    row = {"question": "Q?", "answer": "A.", "paraphrased_question": "Q2?", "paraphrased_answer": "A2.",
           "perturbed_answer": ["B.", "C."]}
    return {**row, **change}


@pytest.mark.parametrize("change, message", [
    ({"perturbed_answer": [1, 2]}, r"row 1 perturbed_answer\[0\] is int, not a string"),
    ({"perturbed_answer": ["B.", "  "]}, r"row 1 perturbed_answer\[1\] is empty"),
    ({"perturbed_answer": []}, r"row 1 perturbed_answer is an empty list"),
    ({"perturbed_answer": ["B.", "A."]}, r"row 1 perturbed_answer\[1\] equals the true answer"),
    ({"answer": ""}, r"row 1 answer must be a non-empty string"),
])
def test_bad_perturbed_rows_are_named(tmp_path, change, message):
    path = tmp_path / "forget10_perturbed.json"
    path.write_text(json.dumps([_row(), _row(**change)]))
    with pytest.raises(tofu.TofuDataError, match=rf"forget10_perturbed\.json: {message}"):
        tofu.load_split("forget10_perturbed", tmp_path)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b'{"benchmark": "tofu-tiny"}'])
def test_corrupt_manifest_names_its_file(tmp_path, content):
    (tmp_path / "tofu_tiny.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"tofu_tiny\.json: corrupt tofu-tiny manifest .*"
                                         r"ubench data generate --benchmark tofu-tiny --out"):
        tofu_tiny.expected_counts(tmp_path)


KILLED_WRITER = """
import os, sys
from common import atomic
with atomic.atomic_dir(sys.argv[1]) as tmp:
    (tmp / "half-written.bin").write_bytes(b"x" * 100)
    os.kill(os.getpid(), 9)
"""


def test_temporary_folder_of_a_killed_writer_is_removed_on_the_next_run(tmp_path):
    out = tmp_path / "finetuned-tiny"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], env={**os.environ})
    assert killed.returncode == -9
    [left] = tmp_path.glob(".finetuned-tiny.*.tmp")
    legacy = tmp_path / ".finetuned-tiny.abcd1234.tmp"  # named before temporaries carried a pid
    legacy.mkdir()
    neighbour = tmp_path / ".finetuned-tiny.json.77.abcd1234.tmp"  # another path's temporary: kept
    neighbour.mkdir()
    with atomic.atomic_dir(out) as tmp:
        (tmp / "ok").write_text("done")
    assert not left.exists() and not legacy.exists() and neighbour.exists()
    assert (out / "ok").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == [neighbour.name, "finetuned-tiny"]


def test_temporary_folder_of_a_live_writer_is_kept(tmp_path):
    out = tmp_path / "model"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        theirs = tmp_path / f".model.{live.pid}.abcd1234.tmp"
        theirs.mkdir()
        with atomic.atomic_dir(out):
            pass
        assert theirs.exists()
    finally:
        live.kill()
        live.wait()
