"""lotus-serve's one-line refusals, before any port is opened or any model is loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lotus_deploy.cli import serve_cmd
from lotus_deploy.core.errors import ConfigError
from lotus_deploy.serve.pytriton_server import ServerSettings, free_local_ports


@pytest.mark.parametrize(("settings", "message"), [
    (ServerSettings(max_batch=0), "--max-batch 0 is not positive"),
    (ServerSettings(max_queue_delay_us=-1), "is negative"),
    (ServerSettings(http_port=70000), "is not a TCP port"),
    (ServerSettings(http_port=9000, grpc_port=9000), "must differ"),
])
def test_bad_server_settings_are_refused(settings: ServerSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings.check()


def test_free_ports_are_distinct() -> None:
    ports = free_local_ports(3)
    assert len(set(ports)) == 3 and all(0 < p < 65536 for p in ports)


@pytest.mark.skipif(importlib.util.find_spec("pytriton") is not None, reason="PyTriton is installed here: the serving test covers run")
def test_run_without_pytriton_says_how_to_install_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_cmd.main(["run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "PyTriton is not importable" in err and "nvidia-pytriton>=0.7" in err and "Traceback" not in err


def test_repo_of_a_missing_artifact_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_cmd.main(["repo", str(tmp_path / "nope"), "--out", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err and not (tmp_path / "repo").exists()
