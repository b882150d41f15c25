"""``python -m cra``: the command table, help, errors."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from cra import cli


def test_every_command_module_has_the_interface():
    for name, (module_name, help_text) in cli.COMMANDS.items():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run), name
        assert help_text, name


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "cra", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in cli.COMMANDS:
        assert name in result.stdout


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(["no-such-command"])
    assert err.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_reports_the_data_dir(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CRA_DATA_DIR", str(tmp_path))
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path.resolve()) in out and "missing  nextgqa/val.csv" in out
