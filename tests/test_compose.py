"""docker/compose.yaml cannot run here (no Docker engine); check it agrees with pang's settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pang.settings import Settings, load_settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker" / "compose.yaml"


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(COMPOSE.read_text())


def _default(value: str) -> str:
    """``${VAR:-default}`` -> ``default``, as compose expands it with VAR unset."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def test_services_use_official_images_on_loopback() -> None:
    services = _compose()["services"]
    assert services["opensearch"]["image"].startswith("opensearchproject/opensearch:2.19.")
    assert services["seaweedfs"]["image"].startswith("chrislusf/seaweedfs:")
    defaults = load_settings()
    assert services["opensearch"]["ports"] == [f"127.0.0.1:{defaults.opensearch_port}:9200"]
    assert services["seaweedfs"]["ports"] == [f"127.0.0.1:{defaults.s3_local_port}:8333"]
    assert "-s3.port=8333" in services["seaweedfs"]["command"]


def test_pang_services_use_real_setting_names_that_point_at_the_compose_servers(tmp_path: Path) -> None:
    services = _compose()["services"]
    pang_services = {name: s for name, s in services.items() if name.startswith("pang-")}
    assert pang_services, "compose has no pang service"
    for name, service in pang_services.items():
        env = {k: _default(str(v)) for k, v in service["environment"].items()}
        unknown = {k for k in env if k.removeprefix("PANG_").lower() not in Settings.model_fields}
        assert not unknown, f"{name} sets variables pang does not read: {unknown}"
        settings = load_settings(**{k.removeprefix("PANG_").lower(): v for k, v in env.items()})
        assert settings.opensearch_url == "http://opensearch:9200"
        assert settings.s3_effective_endpoint == "http://seaweedfs:8333"
        assert not settings.opensearch_is_local and not settings.s3_is_local  # so `pang stack up` starts nothing
        # the S3 server is given the same credentials and bucket pang uses
        weed = {k: _default(str(v)) for k, v in services["seaweedfs"]["environment"].items()}
        assert weed["AWS_ACCESS_KEY_ID"] == settings.s3_access_key.get_secret_value()
        assert weed["AWS_SECRET_ACCESS_KEY"] == settings.s3_secret_key.get_secret_value()
        assert weed["S3_BUCKET"] == settings.s3_bucket
        assert settings.archive.startswith(f"s3://{settings.s3_bucket}/")
        for dep in service.get("depends_on", {}):
            assert dep in services
