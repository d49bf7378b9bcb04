import json

import pytest

from evaluation.benchmarks.tofu.legacy_import import import_log

EXPECTED_FULL = {  # shared data README, "Expected aggregates", Phi-1.5 full
    "retain_prob": 0.9261, "retain_rouge": 0.9293, "retain_truth_ratio": 0.4827,
    "ra_prob": 0.3774, "ra_rouge": 0.4157, "ra_truth_ratio": 0.4560,
    "wf_prob": 0.4090, "wf_rouge": 0.7774, "wf_truth_ratio": 0.4923,
}
EXPECTED_RETAIN = {
    "retain_prob": 0.9231, "retain_rouge": 0.9200, "retain_truth_ratio": 0.4847,
    "ra_prob": 0.3842, "ra_rouge": 0.4753, "ra_truth_ratio": 0.4638,
    "wf_prob": 0.4081, "wf_rouge": 0.7557, "wf_truth_ratio": 0.4883,
}


@pytest.mark.shared_data
def test_golden_phi_logs(shared_tofu):
    logs = shared_tofu / "official_eval_logs"
    full, retain = (logs / f"phi_{n}_wd0.01_eval_log_aggregated.json" for n in ("full", "retain90"))
    result = import_log(full, retain)
    assert f"{result['model_utility']:.4g}" == "0.5221"
    assert f"{result['forget_quality']:.3g}" == "2.19e-16"
    assert result["ks_statistic"] == pytest.approx(0.3467, abs=5e-5)
    for name, value in EXPECTED_FULL.items():
        assert result["utility_components"][name] == pytest.approx(value, abs=5e-5), name
    assert result["forget"] == pytest.approx({"prob": 0.9282, "rouge": 0.9249, "truth_ratio": 0.4834}, abs=5e-5)
    reference = import_log(retain, retain)
    assert f"{reference['model_utility']:.4g}" == "0.532" and reference["forget_quality"] == 1.0
    for name, value in EXPECTED_RETAIN.items():
        assert reference["utility_components"][name] == pytest.approx(value, abs=5e-5), name
    assert reference["forget"] == pytest.approx({"prob": 0.1349, "rouge": 0.4279, "truth_ratio": 0.6288}, abs=5e-5)


def test_import_rejects_a_log_without_sections(tmp_path):
    bad = tmp_path / "log.json"
    bad.write_text(json.dumps({"eval_log.json": {"avg_gt_loss": {}}}))
    with pytest.raises(ValueError, match="lacks field .rougeL_recall."):
        import_log(bad)
    with pytest.raises(FileNotFoundError, match="eval_log_aggregated"):
        import_log(tmp_path / "missing.json")
