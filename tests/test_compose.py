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


# Variables the Fluent Bit sidecar reads that are not pang settings (pang takes one URL; Fluent Bit
# a host, a port and a TLS switch; the network interface is an input option).
FLUENT_BIT_ONLY = {"PANG_OPENSEARCH_HOST", "PANG_OPENSEARCH_PORT", "PANG_OPENSEARCH_TLS", "PANG_FLB_NETIF"}


def test_fluent_bit_sidecar_runs_the_repo_config_against_the_same_opensearch() -> None:
    from urllib.parse import urlparse

    services = _compose()["services"]
    fb = services["fluent-bit"]
    # the official image at a pinned 3.x/4.x version, never :latest
    assert re.fullmatch(r"fluent/fluent-bit:[34]\.\d+\.\d+", fb["image"])
    # opt-in, so it never ships the same files as pang's own agent
    assert fb["profiles"] == ["fluent-bit"]

    mounts = {v.split(":")[1]: v.split(":")[0] for v in fb["volumes"]}
    (config_dir,) = [target for target, source in mounts.items() if source == "./fluent-bit"]
    assert f"./fluent-bit:{config_dir}:ro" in fb["volumes"]
    args = fb["command"]
    config_path = args[args.index("-c") + 1]
    assert config_path.startswith(config_dir + "/")
    local = COMPOSE.parent / "fluent-bit"
    assert (local / config_path.removeprefix(config_dir + "/")).is_file()
    config = yaml.safe_load((local / "fluent-bit.yaml").read_text())
    # every file the config names under the mount is in docker/fluent-bit/
    for path in re.findall(rf"{re.escape(config_dir)}/[\w./-]+", (local / "fluent-bit.yaml").read_text()):
        assert (local / path.removeprefix(config_dir + "/")).is_file(), path

    # logs and state are volumes where the config expects them
    (tail,) = [i for i in config["pipeline"]["inputs"] if i["name"] == "tail"]
    assert "/pang/logs/app" in mounts and tail["path"].startswith("/pang/logs/app/")
    state = next(t for t in mounts if t.startswith("/pang/state/"))
    assert str(tail["db"]).startswith(state + "/") and str(config["service"]["storage.path"]).startswith(state + "/")
    for named in (mounts["/pang/logs/app"], mounts[state]):
        assert named in _compose()["volumes"]

    # the same OpenSearch as pang's services, under pang's setting names where pang has them
    env = {k: _default(str(v)) for k, v in fb["environment"].items()}
    unknown = {k for k in env if k.removeprefix("PANG_").lower() not in Settings.model_fields} - FLUENT_BIT_ONLY
    assert not unknown, f"fluent-bit sets variables neither pang nor the config reads: {unknown}"
    for name, service in services.items():
        if name.startswith("pang-"):
            url = urlparse(_default(str(service["environment"]["PANG_OPENSEARCH_URL"])))
            assert (env["PANG_OPENSEARCH_HOST"], int(env["PANG_OPENSEARCH_PORT"])) == (url.hostname, url.port)
            assert (env["PANG_OPENSEARCH_TLS"] == "on") == (url.scheme == "https")
    # templates before the first document; syslog on pang's port, loopback only
    assert fb["depends_on"]["pang-setup"] == {"condition": "service_completed_successfully"}
    port = load_settings().syslog_port
    assert sorted(fb["ports"]) == sorted([f"127.0.0.1:{port}:{port}/udp", f"127.0.0.1:{port}:{port}/tcp"])
