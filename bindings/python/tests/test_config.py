"""Registries built from runward.toml, alone and together with Python checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

import runward

CONFIG = """
[service]
id = "from-file"
version = "1.2.3"

[health]
heartbeat_timeout_ms = 60000

[[checks]]
name = "disk"
kind = "disk"
path = "."
probes = ["readiness", "liveness"]

[[checks]]
name = "data-dir"
kind = "path"
path = "data"
create = true
remediation = "run doctor with fix=True"
"""


def test_checks_from_file_and_code(write_config: Callable[[str], Path]) -> None:
    path = write_config(CONFIG)
    h = runward.Health(path, version="9.9.9")
    h.add_check("code", lambda: True)
    assert h.check_names == ["disk", "data-dir", "code"]
    h.refresh_all()
    report = h.report()
    assert report["serviceId"] == "from-file"
    assert report["version"] == "9.9.9"  # keyword arguments override the file
    assert report["checks"]["code:status"][0]["status"] == "pass"
    assert "disk" in h.table()


def test_relative_paths_resolve_against_the_config_file(
    write_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(CONFIG)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    h = runward.Health(str(path))
    assert h.refresh("data-dir")["status"] == "fail"
    before = h.doctor()
    entry = next(c for c in before["checks"] if c["name"] == "data-dir")
    assert entry["fix"]["applied"] is False
    assert str(tmp_path / "data") in entry["remediation"]  # the outcome's own hint wins
    after = h.doctor(fix=True)
    entry = next(c for c in after["checks"] if c["name"] == "data-dir")
    assert entry["fix"]["applied"] is True
    assert entry["status"] == "pass"
    assert (tmp_path / "data").is_dir()
    assert not (elsewhere / "data").exists()


def test_malformed_config_names_file_and_line(write_config: Callable[[str], Path]) -> None:
    path = write_config('[service]\nid = "x"\n[[checks]\n')
    with pytest.raises(runward.ConfigError) as info:
        runward.Health(path)
    assert str(info.value).startswith(f"{path}:3:")
    assert info.value.location == (str(path), 3, info.value.location[2])  # type: ignore[index]
    assert info.value.kind == "config"
    assert isinstance(info.value, ValueError)


def test_unknown_check_kind_lists_known_kinds(write_config: Callable[[str], Path]) -> None:
    path = write_config('[[checks]]\nname = "a"\nkind = "htp"\n')
    with pytest.raises(runward.ConfigError, match=r"unknown check kind `htp`.*http, tcp"):
        runward.Health(path)


def test_missing_config_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(runward.NotFoundError) as info:
        runward.Health(tmp_path / "nope.toml")
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_tcp_check_against_a_real_loopback_port(write_config: Callable[[str], Path], http_dependency: Any) -> None:
    host, port = http_dependency.server_address[:2]
    path = write_config(f'[[checks]]\nname = "upstream"\nkind = "tcp"\nhost = "{host}"\nport = {port}\n')
    h = runward.Health(path)
    assert h.refresh("upstream")["status"] == "pass"
    http_dependency.shutdown()
    http_dependency.server_close()
    down = h.refresh("upstream")
    assert down["status"] == "fail"
    assert down["outage"] == "connection_refused"


def test_no_config_means_no_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runward.toml").write_text('[[checks]]\nname = "x"\nkind = "disk"\npath = "."\n')
    h = runward.Health()  # an explicit path is needed; nothing is discovered
    assert h.check_names == []
    assert h.status() == "pass"
    assert os.listdir(tmp_path) == ["runward.toml"]
