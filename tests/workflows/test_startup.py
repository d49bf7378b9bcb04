"""`ubench --help` and config errors answer without importing torch or transformers (issue 16).

Each command runs in a fresh interpreter (benchmarks/bench_startup.py's probe) that reports which
heavy modules were loaded when the command returned: behaviour, not wall time.
"""
from __future__ import annotations

import re

import pytest

from benchmarks.bench_startup import cases, probe

# what each error must name (file:line for YAML, the wrong name and the accepted ones otherwise)
EXPECTED = {
    "--help": (0, None),
    "grid --help": (0, None),
    "grid yaml_syntax": (1, r"yaml_syntax.yaml:3:1: YAML syntax error"),
    "config unknown_key": (1, "objective"),
    "config unknown_benchmark": (1, "unknown benchmark 'tofu-tinny'"),
    "config unknown_objective": (1, "unknown objective 'gaa'; registered: .*graddiff"),
    "config unknown_rectifier": (1, "unknown rectifier 'sagoo'; registered: .*sago"),
    "config unknown_analyzer": (1, "unknown analyzer 'geffekt'; available: geffect"),
    "config idle_override": (1, "when.rectifier: 'gruu' matches no run"),
}


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    return cases(tmp_path_factory.mktemp("startup"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_help_and_config_errors_leave_torch_and_transformers_unimported(commands, name):
    code, message = EXPECTED[name]
    result = probe(commands[name])
    assert result["rc"] == code, result["stderr"]
    assert result["heavy"] == [], f"ubench {' '.join(commands[name])} imported {result['heavy']}"
    if message:
        assert re.search(message, result["stderr"]), result["stderr"]


def test_the_probe_sees_torch_when_a_command_needs_it(commands):
    # the default config gives RMU arguments: checking them builds the objective, whose module imports torch
    result = probe(commands["config show (default)"])
    assert result["rc"] == 0 and "torch" in result["heavy"], result
