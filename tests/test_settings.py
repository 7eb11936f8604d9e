"""Settings: environment over file over defaults, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pang.settings import SettingsError, load_settings

PANG = [sys.executable, "-m", "pang.cli"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PANG_"):
            monkeypatch.delenv(key)


def test_environment_overrides_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "pang.toml"
    config.write_text('s3_bucket = "logs-archive"\n\n[opensearch]\nurl = "http://10.1.2.3:9201"\nheap = "2g"\n')
    monkeypatch.setenv("PANG_OPENSEARCH_HEAP", "3g")
    settings = load_settings(config)
    assert settings.opensearch_url == "http://10.1.2.3:9201"  # from the file's [opensearch] table
    assert settings.opensearch_port == 9201
    assert settings.opensearch_heap == "3g"  # the environment wins over the file
    assert settings.s3_bucket == "logs-archive"
    assert not settings.opensearch_is_local


def test_archive_defaults_to_a_local_folder_without_an_s3_endpoint(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path)
    assert settings.archive == (tmp_path / "archive").resolve().as_uri()
    assert settings.s3_is_local  # the stack still runs SeaweedFS locally


def test_archive_goes_to_s3_when_an_endpoint_is_set(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, s3_endpoint="https://s3.example.com", s3_bucket="acme-logs")
    assert settings.archive == "s3://acme-logs/archive"
    assert not settings.s3_is_local


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("PANG_OPENSEARCH_URL", "localhost:9200", "http:// or https://"),
        ("PANG_ARCHIVE_URL", "ftp://host/x", "s3://bucket/prefix or file:///"),
        ("PANG_S3_LOCAL_PORT", "99999", "less than or equal to 65535"),
        ("PANG_OPENSEARCH_HEAP", "lots", "pattern"),
        ("PANG_OPENSEARCH_VERIFY_CERTS", "maybe", "boolean"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"setting {env}:")
    assert expected in message
    assert "\n" not in message


def test_missing_or_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("opensearch_url = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken)


def test_cli_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PANG_OPENSEARCH_URL": "not a url", "PANG_STATE_DIR": str(tmp_path)}
    proc = subprocess.run([*PANG, "stack", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "PANG_OPENSEARCH_URL" in lines[0] and "Traceback" not in proc.stderr


def test_cli_help_explains_every_command() -> None:
    proc = subprocess.run([*PANG, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for command in ("stack", "index", "demo", "config"):
        assert command in proc.stdout
