"""benchmarks/bench_rectifiers.py's real-size part without running it: the skip line when the converted
model is absent, and the figures it derives from step times and buffer sizes."""
from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from benchmarks import bench_rectifiers as bench


def test_without_the_converted_model_the_real_size_is_skipped_naming_make_real_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UBENCH_MODEL_CACHE", str(tmp_path))
    real = bench.real_size(argparse.Namespace())
    assert set(real) == {"skipped"} and "make real-model" in real["skipped"] and str(tmp_path) in real["skipped"]
    assert "real size skipped" in capsys.readouterr().out
    assert bench.real_lines(real) == ["", f"Real size: skipped ({real['skipped']})."]


def test_summarise_gives_ratios_to_none_and_buffer_copies_in_gradient_units():
    names = [bench.label(r, a) for r, a in bench.RECTIFIERS]
    cpu = {name: [2.0, 2.2, 2.4] for name in names}
    cpu["gru"] = [3.0, 3.3, 3.6]
    wall = {name: [5.0] for name in names}
    info = {name: SimpleNamespace(gradient_buffer_bytes=8 * 100, backward_passes=8, optimizer_steps=4) for name in names}
    info["none"] = SimpleNamespace(gradient_buffer_bytes=4 * 100, backward_passes=8, optimizer_steps=4)
    info["gru"] = SimpleNamespace(gradient_buffer_bytes=12 * 100, backward_passes=8, optimizer_steps=4)
    rows = {r["rectifier"]: r for r in bench.summarise(wall, cpu, info, bench.REAL_GOAL, gradient_bytes=4 * 100)}
    assert rows["gru"]["cpu_ratio_to_none"] == pytest.approx(1.5)
    assert rows["gru"]["extra_cpu_ms_per_step"] == pytest.approx(1100.0)
    assert rows["gru"]["extra_fp32_copies"] == 2 and rows["gru"]["memory_target_met"]
    assert not rows["gru"]["ratio_target_met"] and rows["blur"]["ratio_target_met"]
    assert rows["none"]["extra_fp32_copies"] == 0 and rows["sago"]["backward_passes_per_step"] == 2
    text = "\n".join(bench.table_lines(list(rows.values())))
    assert "| gru | 5000.0 | 1.000 | 3300.0 | 1.500 | +1100 | 2 | 2 |" in text
