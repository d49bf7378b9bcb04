"""`ubench plan-memory` over whole configs: every paper config fits its declared 80 GB GPUs (fast),
and the exit status says whether a config fits."""
from pathlib import Path

from workflows import memory_plan_grid

REPO = Path(__file__).resolve().parents[2]


def test_every_paper_config_fits_its_gpus_and_plans_in_seconds():
    """Every paper config fits its declared GPUs with every term counted, and plans in <= 10 s of CPU
    (meta models are built once per architecture; grun_tofu took ~100 s when each job built its own)."""
    import time

    from workflows import grid

    for config in sorted((REPO / "config" / "paper").glob("*.yaml")):
        started = time.process_time()
        lines = []
        fits = memory_plan_grid.report(grid.build(grid.load_config(str(config))), out=lines.append)
        seconds = time.process_time() - started
        assert fits, config.stem + ":\n" + "\n".join(line for line in lines if "DOES NOT FIT" in line)
        assert lines[-1].endswith("all fit their declared GPUs")
        assert seconds <= 10, f"{config.stem}: plan-memory took {seconds:.1f} s of CPU"


def test_cli_exit_status_says_whether_it_fits(tmp_path, capsys):
    from workflows.cli import main

    tight = tmp_path / "tight.yaml"
    text = (REPO / "config" / "paper" / "ou_tofu.yaml").read_text()
    tight.write_text(text.replace("mixed_precision: bf16}", "mixed_precision: bf16, gpu_memory_gb: 16}"))
    assert main(["plan-memory", "--configfile", str(tight)]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
