import json

import pytest

from workflows.cli import main


@pytest.mark.shared_data
def test_import_log_prints_mu_fq_and_components(shared_tofu, capsys):
    logs = shared_tofu / "official_eval_logs"
    assert main(["tofu", "import-log", str(logs / "phi_full_wd0.01_eval_log_aggregated.json"),
                 "--retain", str(logs / "phi_retain90_wd0.01_eval_log_aggregated.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert round(printed["model_utility"], 4) == 0.5221
    assert f"{printed['forget_quality']:.3g}" == "2.19e-16"
    assert len(printed["utility_components"]) == 9


def test_data_generate_writes_the_tofu_tiny_schema(tmp_path, capsys):
    assert main(["data", "generate", "--benchmark", "tofu-tiny", "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "forget10_perturbed.json").is_file()
    assert len(json.loads((tmp_path / "d" / "full.json").read_text())) == 500


def test_evaluate_rejects_a_missing_model_folder(tmp_path, tiny_folder, capsys):
    argv = ["evaluate", "--benchmark", "tofu-tiny", "--model", str(tmp_path / "nope"), "--data", str(tiny_folder),
            "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["--debug", *argv])
    assert not (tmp_path / "o" / "metrics.json").exists()
