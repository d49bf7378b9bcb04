"""`ubench` reports expected errors in one message (exit 1); --debug / UBENCH_DEBUG show the traceback."""
from __future__ import annotations

import pytest

from workflows import cli, grid


@pytest.fixture
def broken_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models:\n  a: {base: x\nexperiments: []\n", encoding="utf-8")
    return path


def test_expected_error_is_one_message_without_traceback(broken_yaml, capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    assert cli.main(["grid", "--configfile", str(broken_yaml)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("ubench grid: error: ")
    assert f"{broken_yaml}:3:" in err and "YAML syntax error" in err  # file and line


def test_missing_file_names_it_without_errno_noise(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
    missing = tmp_path / "nope.yaml"
    assert cli.main(["config", "show", "--configfile", str(missing)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert f"ubench config show: error: {missing}: No such file or directory" in err
    assert "Errno" not in err


@pytest.mark.parametrize("how", ["flag-before", "flag-after", "env"])
def test_debug_shows_the_traceback(broken_yaml, monkeypatch, how):
    argv = ["grid", "--configfile", str(broken_yaml)]
    if how == "env":
        monkeypatch.setenv(cli.DEBUG_VARIABLE, "1")
    else:
        monkeypatch.delenv(cli.DEBUG_VARIABLE, raising=False)
        argv = ["--debug", *argv] if how == "flag-before" else [*argv, "--debug"]
    with pytest.raises(grid.GridError, match="YAML syntax error"):
        cli.main(argv)


def test_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(grid.GridError, match=r"latin1\.yaml: not UTF-8"):
        grid.load_yaml(path)
