"""The preview and metrics config sections, the HOST:PORT flags and the loopback rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectstream.cli import main
from affectstream.config import Config, build_config, load_config
from affectstream.errors import ConfigError
from affectstream.webconfig import is_loopback, parse_address


@pytest.mark.parametrize(("spec", "expected"), [
    ("8090", ("127.0.0.1", 8090)), (":8090", ("127.0.0.1", 8090)),
    ("localhost:0", ("localhost", 0)), ("[::1]:9000", ("::1", 9000)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
])
def test_parse_address(spec: str, expected: tuple[str, int]) -> None:
    assert parse_address(spec, "--preview") == expected


@pytest.mark.parametrize("spec", ["", "abc", "host:", "host:70000", ":-1"])
def test_parse_address_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"--preview .*HOST:PORT"):
        parse_address(spec, "--preview")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.2", False), ("example.org", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_preview_and_metrics_are_off_by_default() -> None:
    cfg = Config()
    assert cfg.preview.port is None and cfg.metrics.port is None
    assert cfg.preview.host == cfg.metrics.host == "127.0.0.1"


@pytest.mark.parametrize("section", ["preview", "metrics"])
def test_remote_host_needs_allow_remote(section: str) -> None:
    with pytest.raises(ConfigError, match=f"{section}.allow_remote: true"):
        build_config({section: {"host": "0.0.0.0", "port": 8090}})
    cfg = build_config({section: {"host": "0.0.0.0", "port": 8090, "allow_remote": True}})
    assert getattr(cfg, section).host == "0.0.0.0"


@pytest.mark.parametrize("flag", ["--preview", "--metrics"])
def test_cli_refuses_a_remote_host_in_one_line(flag: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["run", "--source", "demo", flag, "0.0.0.0:8090"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    section = flag.removeprefix("--")
    assert f"{section}.host ({flag}) 0.0.0.0 is not a loopback address" in err
    assert f"{section}.allow_remote: true" in err


def test_cli_remote_host_allowed_by_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "remote.yaml"
    path.write_text("preview: {allow_remote: true}\n", encoding="utf-8")
    from affectstream.cli import _build_parser, _load

    args = _build_parser().parse_args(["run", "--config", str(path), "--preview", "0.0.0.0:0"])
    cfg = _load(args)
    assert (cfg.preview.host, cfg.preview.port, cfg.preview.allow_remote) == ("0.0.0.0", 0, True)


def test_cli_bad_address_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--preview", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preview 'nope'" in err


def test_bench_accepts_preview() -> None:
    from affectstream.cli import _build_parser, _load

    args = _build_parser().parse_args(["bench", "--source", "x.mp4", "--pipeline", "full",
                                       "--preview", ":0"])
    assert _load(args).preview.port == 0


def test_config_check_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("metrics: {host: 10.0.0.1, port: 9100}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: metrics.host 10.0.0.1 .*allow_remote"):
        load_config(path)


def test_bench_preview_needs_the_full_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--source", "x.mp4", "--preview", ":0"]) == 2
    assert "--preview needs the run pipeline: add --pipeline full" in capsys.readouterr().err
