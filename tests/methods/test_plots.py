"""`ubench plot train-log`: runs found below folders, labelled by their path, drawn into one PNG."""
import pytest

from methods.plots import find_train_logs, read_train_log
from methods.train import TrainConfig, train
from tests.methods.conftest import make_streams, tiny_llama
from workflows.cli import main


def test_train_log_plot_overlays_runs_found_below_a_folder(tmp_path):
    for rectifier in ("none", "pcgrad"):
        config = TrainConfig(objective="graddiff", rectifier=rectifier, lr=1e-2, max_steps=3, batch_size=4)
        train(tiny_llama(), make_streams(), config, tmp_path / "results" / f"graddiff+{rectifier}" / "seed0",
              pad_token_id=0, progress=False)
    logs = find_train_logs([tmp_path / "results"])
    assert sorted(logs) == ["graddiff+none/seed0", "graddiff+pcgrad/seed0"]
    assert [row["step"] for row in read_train_log(logs["graddiff+pcgrad/seed0"])] == [1, 2, 3]
    out = tmp_path / "curves.png"
    assert main(["plot", "train-log", str(tmp_path / "results"), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_log_plot_explains_missing_or_wrong_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no train_log.jsonl"):
        find_train_logs([tmp_path])
    bad = tmp_path / "train_log.jsonl"
    bad.write_text('{"e_u": {}}\n')
    with pytest.raises(ValueError, match="no training steps"):
        read_train_log(bad)
