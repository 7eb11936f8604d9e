"""One typed settings object for all of pang.

Values come, highest priority first, from keyword arguments, ``PANG_*``
environment variables, an optional TOML file (``pang --config FILE`` or
``PANG_CONFIG``) and the defaults below. The TOML file may group keys in
tables: ``[opensearch] url = ...`` is the same as ``opensearch_url = ...``,
so a config file reads naturally while environment names stay flat and
greppable (``PANG_OPENSEARCH_URL``).

A bad value raises :class:`SettingsError` carrying one line that names the
environment variable and what it expects; the CLI prints that line and exits
with status 2 instead of showing a pydantic traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from contextvars import ContextVar
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "PANG_"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class SettingsError(ValueError):
    """A setting has a value pang cannot use; ``str(err)`` is one line for a person."""


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML config file, flattening one level of tables into ``table_key``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path is None:
            return
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in raw.items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    self._data[f"{key}_{sub}".replace("-", "_")] = subvalue
            else:
                self._data[key.replace("-", "_")] = value

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class LifecycleRule(BaseModel):
    """One archive lifecycle rule; ``prefix`` is relative to the archive (e.g. ``dataset=app/``)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    prefix: str = ""
    expire_days: int | None = Field(default=None, ge=1)
    transition_days: int | None = Field(default=None, ge=1)
    storage_class: str | None = None
    abort_multipart_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> LifecycleRule:
        if self.transition_days and not self.storage_class:
            raise ValueError(f"rule {self.id}: transition_days needs storage_class")
        if not (self.expire_days or self.transition_days or self.abort_multipart_days):
            raise ValueError(f"rule {self.id}: give expire_days, transition_days or abort_multipart_days")
        if self.expire_days and self.transition_days and self.expire_days <= self.transition_days:
            raise ValueError(f"rule {self.id}: expire_days must come after transition_days")
        return self


class StatusComponent(BaseModel):
    """A component of the status page: the services and business signals whose alerts degrade it."""

    model_config = {"extra": "forbid"}

    services: list[str] = Field(default_factory=list)
    signals: list[str] = Field(default_factory=list)
    title: str | None = None

    @model_validator(mode="after")
    def _check(self) -> StatusComponent:
        if not (self.services or self.signals):
            raise ValueError("a component needs at least one service or signal")
        return self


# The demo shop's components and call graph (pang.traffic): what a status page of that shop would list.
_DEFAULT_COMPONENTS = {
    "storefront": {"services": ["gateway", "search"], "title": "Storefront"},
    "cart": {"services": ["cart"], "title": "Cart"},
    "order": {"services": ["order"], "signals": ["orders"], "title": "Orders"},
    "payment": {"services": ["payment"], "signals": ["payments", "payment_failures"], "title": "Payments"},
    "shipment": {"services": ["shipment"], "title": "Shipping"},
}
_DEFAULT_NEIGHBOURS = {
    "gateway": ["search", "cart", "order", "payment"],
    "search": ["gateway", "cart"],
    "cart": ["gateway", "order", "search"],
    "order": ["gateway", "cart", "payment", "shipment"],
    "payment": ["gateway", "order"],
    "shipment": ["order"],
}


class Settings(BaseSettings):
    """Everything pang can be told. Field ``foo_bar`` is env ``PANG_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        validate_default=True,
        frozen=True,
    )

    # --- where pang keeps things -------------------------------------------------
    state_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "pang",
        description="Checkpoints, spools, and the local stack's data and logs.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "pang",
        description="Build products kept across checkouts: the OpenSearch launcher and the weed binary.",
    )
    maven_repo_local: Path | None = Field(
        default=None, description="Maven's local repository (-Dmaven.repo.local); Maven's default if unset."
    )

    # --- OpenSearch ----------------------------------------------------------------
    opensearch_url: str = Field(
        default="http://127.0.0.1:9200",
        description="OpenSearch REST URL. On loopback, `pang stack up` starts a local node on its port.",
    )
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None
    opensearch_ca_certs: Path | None = Field(default=None, description="PEM bundle to verify the node's TLS certificate.")
    opensearch_verify_certs: bool = True
    opensearch_client_cert: Path | None = None
    opensearch_client_key: Path | None = None
    opensearch_timeout: float = Field(default=30.0, gt=0, description="Seconds per request.")
    opensearch_transport_port: int = Field(default=9300, ge=1, le=65535, description="Local node's transport port.")
    opensearch_heap: str = Field(default="1g", pattern=r"^\d+[mg]$", description="Local node's JVM heap, e.g. 1g.")

    # --- object storage ------------------------------------------------------------
    s3_endpoint: str | None = Field(
        default=None,
        description="S3-compatible endpoint URL. Unset: the local SeaweedFS runs, and the archive is a local folder.",
    )
    s3_access_key: SecretStr = SecretStr("pang-local")
    s3_secret_key: SecretStr = SecretStr("pang-local-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = Field(default="pang-archive", min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]+[a-z0-9]$")
    s3_verify: bool = True
    s3_ca_bundle: Path | None = None
    s3_local_port: int = Field(default=8333, ge=1, le=65535, description="S3 port of the local SeaweedFS.")
    seaweedfs_master_port: int = Field(default=9333, ge=1, le=55535)
    seaweedfs_volume_port: int = Field(default=9340, ge=1, le=55535)
    seaweedfs_filer_port: int = Field(default=8888, ge=1, le=55535)
    seaweedfs_admin_port: int = Field(default=12535, ge=1, le=55535)
    archive_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix or file:///path. Unset: s3://<bucket>/archive if an endpoint is set, else <state_dir>/archive.",
    )

    # --- the shipper (pang ship) -----------------------------------------------------
    host_name: str = Field(default_factory=lambda: __import__("socket").gethostname(), description="host.name on every document.")
    service_environment: str | None = Field(default=None, description="service.environment on every document (e.g. production).")
    service_version: str | None = Field(default=None, description="service.version on file documents, unless the line says otherwise.")
    ship_paths: list[str] = Field(
        default=["/pang/logs/app/**/*.log"],
        description="Globs of log files (JSON list in the environment). The service is the first folder under the glob's fixed prefix.",
    )
    ship_start_at: Literal["beginning", "end"] = Field(default="beginning", description="Where files found at the very first start are read from.")
    ship_max_line_bytes: int = Field(default=256 * 1024, ge=1024, description="Longer lines are truncated and tagged pang.truncated.")
    ship_max_open_files: int = Field(default=1024, ge=1)
    ship_rotate_wait: float = Field(default=5.0, ge=0, description="Seconds a rotated or deleted file stays open after its last data.")
    ship_close_inactive: float = Field(default=300.0, gt=0, description="Close unchanged files after this many seconds (reopened on change).")
    ship_scan_interval: float = Field(default=1.0, gt=0, description="Seconds between looks for new files.")
    ship_multiline_pattern: str | None = Field(default=None, description="A regex: lines matching it start an event; others continue it. Unset: stack-trace rules.")
    ship_multiline_timeout: float = Field(default=1.0, gt=0, description="Seconds after which a pending multiline event is sent.")
    ship_batch_bytes: int = Field(default=5 * 2**20, ge=1024, description="Upper bound of one _bulk request body.")
    ship_batch_seconds: float = Field(default=0.5, gt=0, description="A batch is sent at the latest this long after its first document.")
    ship_senders: int = Field(default=3, ge=1, le=32, description="Threads posting _bulk requests.")
    ship_queue_batches: int = Field(default=4, ge=1, description="Batches waiting to be sent before inputs are slowed.")
    ship_max_backoff: float = Field(default=30.0, gt=0, description="Upper bound of the wait between retries.")
    ship_drain_timeout: float = Field(default=30.0, ge=0, description="On SIGTERM, seconds to finish sending before exiting.")
    ship_http_host: str = Field(default="127.0.0.1", description="Where /metrics and /healthz listen.")
    ship_http_port: int = Field(default=9464, ge=0, le=65535, description="Port of /metrics and /healthz (0: any free port).")
    syslog_enabled: bool = True
    syslog_host: str = Field(default="127.0.0.1", description="Address syslog listens on (0.0.0.0 to accept from other hosts).")
    syslog_port: int = Field(default=5514, ge=0, le=65535, description="UDP and TCP port for syslog.")
    syslog_max_message_bytes: int = Field(default=64 * 1024, ge=480, description="Longer messages are truncated and tagged.")
    syslog_tls_cert: Path | None = Field(default=None, description="PEM certificate: TCP syslog then speaks TLS.")
    syslog_tls_key: Path | None = None
    spool_max_bytes: int = Field(default=2**30, ge=2**20, description="Disk spool bound for syslog and metrics.")
    spool_fsync_interval: float = Field(default=1.0, ge=0)
    metrics_enabled: bool = True
    metrics_interval: float = Field(default=10.0, ge=1, description="Seconds between host metric samples and scrapes.")
    metrics_scrape: dict[str, str] = Field(
        default_factory=dict,
        description='Prometheus endpoints to scrape, service name to URL (JSON object in the environment).',
    )

    # --- the archive -------------------------------------------------------------------
    archive_lifecycle: list[LifecycleRule] = Field(
        default_factory=lambda: [LifecycleRule(id="abort-uploads", abort_multipart_days=2)],
        description='Lifecycle rules (JSON list), e.g. [{"id": "app-1y", "prefix": "dataset=app/", "expire_days": 365}].',
    )
    index_retention_days: int = Field(default=7, ge=1, description="`pang index retention` deletes daily log indices older than this, once archived.")
    archive_grace_seconds: int = Field(default=600, ge=0, description="An hour is archived once it ended this long ago (late documents).")
    archive_zstd_level: int = Field(default=3, ge=1, le=22, description="zstd level of the Parquet files (1-3: same query speed, less CPU).")

    # --- the dashboards (pang dash) ---------------------------------------------------------
    dash_host: str = Field(default="127.0.0.1", description="Address `pang dash` listens on (0.0.0.0 to serve other hosts).")
    dash_port: int = Field(default=8050, ge=0, le=65535, description="Port of `pang dash`.")
    dash_username: str | None = Field(default=None, description="With dash_password: every dashboard request needs HTTP basic auth.")
    dash_password: SecretStr | None = None

    # --- events, status page ---------------------------------------------------------------
    status_components: dict[str, StatusComponent] = Field(
        default_factory=lambda: {k: StatusComponent(**v) for k, v in _DEFAULT_COMPONENTS.items()},
        description='Status page components: name -> {"services": [...], "signals": [...], "title": "..."} (JSON object).',
    )
    service_neighbours: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in _DEFAULT_NEIGHBOURS.items()},
        description="Who calls whom: service -> its neighbours; a change on a neighbour of an alerting service is listed early.",
    )

    # --- the events endpoint (pang events serve) ---------------------------------------------
    events_host: str = Field(default="127.0.0.1", description="Address `pang events serve` listens on; off loopback it needs a token or basic auth.")
    events_port: int = Field(default=8070, ge=0, le=65535, description="Port of `pang events serve` (0: any free port).")
    events_token: SecretStr | None = Field(default=None, description="Bearer token the endpoint requires (Authorization: Bearer ...); also the GitHub webhook secret.")
    events_username: str | None = Field(default=None, description="With events_password: HTTP basic auth on the endpoint (instead of or besides the token).")
    events_password: SecretStr | None = None
    events_tls_cert: Path | None = Field(default=None, description="PEM certificate (with events_tls_key): the endpoint speaks HTTPS only.")
    events_tls_key: Path | None = None
    events_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 2**20, description="Larger request bodies are refused with 413.")
    events_max_batch: int = Field(default=500, ge=1, le=10_000, description="Events one POST /api/events list may carry.")
    events_threads: int = Field(default=4, ge=1, le=64, description="Requests the endpoint handles at once.")
    events_timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds a client may take to send its request.")

    # --- the business (steady state, demo traffic) --------------------------------------
    # Not UTC by default: a shop's peaks are on its customers' wall clock, and a zone with DST
    # makes any code that uses UTC where local time is meant fail visibly in tests and demos.
    business_timezone: str = Field(
        default="Europe/Berlin",
        description='IANA time zone of the business\'s calendar ("23:59", "the 1st at 00:00"), e.g. Europe/Berlin or UTC.',
    )
    # Steady state, the model (pang.steady): which log events are which business signal, and how the
    # expected band and the alert rule are shaped. Defaults are tuned on `pang steady backtest`.
    steady_signals: dict[str, str] = Field(
        default_factory=lambda: {"orders": "order.placed", "payments": "payment.approved", "payment_failures": "payment.failed"},
        description="Business signal name -> the event.action its log events carry (JSON object in the environment).",
    )
    steady_ratios: dict[str, str] = Field(
        default_factory=dict,
        description='Ratio signals: name -> "numerator/denominator" of two signals, e.g. {"payment_failure_ratio": "payment_failures/payments"}.',
    )
    steady_band_width: float = Field(default=4.5, gt=0, le=50, description="Half-width of the band in spreads (robust standard deviations).")
    steady_history_weeks: int = Field(default=8, ge=1, le=52, description="Weeks of the same weekday and time the expectation is the median of.")
    steady_min_cycles: int = Field(default=3, ge=1, le=52, description="Fewer earlier cycles than this: the band is low-confidence and raises no alert.")
    steady_alert_k: int = Field(default=1, ge=1, le=60, description="An alert opens when K of the last N minutes are outside the band.")
    steady_alert_n: int = Field(default=1, ge=1, le=60, description="N of the K-of-N rule (minutes).")
    steady_alert_m: int = Field(default=5, ge=1, le=240, description="An open alert resolves after M minutes in a row back inside the band.")
    steady_holidays: list[str] = Field(
        default_factory=list,
        description='Special days compared with their own kind: ISO dates ("2026-12-24") and/or country codes of the holidays package ("DE", "DE-BY").',
    )
    # `pang steady run`: the I/O side (rollups, alerts out, its own /metrics). A minute is judged only
    # `steady_lag_seconds` after it ended: the agent ships within seconds, but a half-shipped minute
    # would look like a drop.
    steady_lag_seconds: float = Field(default=90.0, ge=0, le=3600, description="A minute is complete this many seconds after it ended.")
    steady_log_datasets: list[Literal["app", "syslog"]] = Field(
        default_factory=lambda: ["app"], description='Log datasets whose event.action is counted (JSON list): "app", "syslog".'
    )
    steady_interval: float = Field(default=15.0, gt=0, le=3600, description="Seconds between two passes of `pang steady run`.")
    steady_http_host: str = Field(default="127.0.0.1", description="Where `pang steady run` serves /metrics and /healthz.")
    steady_http_port: int = Field(default=9465, ge=0, le=65535, description="Port of `pang steady run`'s /metrics and /healthz (0: any free port).")
    steady_webhooks: list[SecretStr] = Field(
        default_factory=list,
        description='URLs that get a POST per alert opened or resolved (JSON list in the environment; masked: Slack URLs hold a token).',
    )
    steady_webhook_format: Literal["json", "slack"] = Field(default="json", description="json: the alert as JSON; slack: a Slack-compatible {text, blocks} payload.")
    steady_webhook_timeout: float = Field(default=120.0, gt=0, description="Seconds one delivery may take with its retries before it counts as failed.")
    steady_webhook_backoff: float = Field(default=1.0, gt=0, description="First wait between webhook retries (doubles each time, up to 30 s).")
    steady_rollup_retention_days: int = Field(default=800, ge=1, description="Days `metrics-business-*` rollups are kept (the model looks back months).")

    # --- local stack -----------------------------------------------------------------
    stack_start_timeout: float = Field(default=180.0, gt=0, description="Seconds to wait for a started server's health.")

    # --- validators --------------------------------------------------------------
    @field_validator("opensearch_url")
    @classmethod
    def _check_opensearch_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("s3_endpoint")
    @classmethod
    def _check_s3_endpoint(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _http_url(value)

    @field_validator("steady_webhooks")
    @classmethod
    def _check_steady_webhooks(cls, value: list[SecretStr]) -> list[SecretStr]:
        return [SecretStr(_http_url(url.get_secret_value())) for url in value]

    @field_validator("business_timezone")
    @classmethod
    def _check_business_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone name such as Europe/Berlin, America/New_York or UTC") from None
        return value

    @field_validator("archive_url")
    @classmethod
    def _check_archive_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme == "s3" and parts.netloc:
            return value.rstrip("/")
        if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
            return value.rstrip("/") or "file:///"
        raise ValueError("expected s3://bucket/prefix or file:///absolute/path")

    # --- derived values ------------------------------------------------------------
    @property
    def opensearch_port(self) -> int:
        parts = urlsplit(self.opensearch_url)
        return parts.port or (443 if parts.scheme == "https" else 9200)

    @property
    def display_opensearch_url(self) -> str:
        """The cluster's URL for messages and pages: credentials inside it (``user:pass@``) masked."""
        return mask_userinfo(self.opensearch_url)

    @property
    def opensearch_is_local(self) -> bool:
        """Whether `pang stack up` should run the node itself (the URL is on loopback)."""
        return urlsplit(self.opensearch_url).hostname in LOOPBACK_HOSTS

    @property
    def s3_is_local(self) -> bool:
        """Whether `pang stack up` runs SeaweedFS: no endpoint, or one on loopback."""
        return self.s3_endpoint is None or urlsplit(self.s3_endpoint).hostname in LOOPBACK_HOSTS

    @property
    def s3_effective_endpoint(self) -> str:
        """The endpoint boto3 talks to: the configured one, else the local SeaweedFS."""
        return self.s3_endpoint or f"http://127.0.0.1:{self.s3_local_port}"

    @property
    def s3_port(self) -> int:
        return urlsplit(self.s3_effective_endpoint).port or 80

    @property
    def archive(self) -> str:
        """The archive's URL after defaults: s3:// where an endpoint is configured, else a local folder."""
        if self.archive_url:
            return self.archive_url
        if self.s3_endpoint:
            return f"s3://{self.s3_bucket}/archive"
        return (self.state_dir / "archive").resolve().as_uri()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = _config_file.get() or os.environ.get(f"{ENV_PREFIX}CONFIG") or None
        return (init_settings, env_settings, _TomlSource(settings_cls, Path(config) if config else None))


def mask_userinfo(url: str) -> str:
    """``https://user:pass@host:9200`` -> ``https://***@host:9200``; other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


_USERINFO_IN_TEXT = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*@")


def mask_urls_in(text: str) -> str:
    """Every ``scheme://user:pass@`` inside free text (an error message, a library's exception) masked."""
    return _USERINFO_IN_TEXT.sub(r"\1***@", text)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:9200")
    try:
        parts.port
    except ValueError:
        raise ValueError("the port in the URL is not a number from 1 to 65535") from None
    return value.rstrip("/")


# The config file named on the command line; a context variable rather than an
# argument because pydantic-settings builds its sources without caller input.
_config_file: ContextVar[Path | None] = ContextVar("pang_config_file", default=None)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from overrides, environment and ``config``; one-line errors."""
    token = _config_file.set(config)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    finally:
        _config_file.reset(token)


def _describe(exc: ValidationError) -> str:
    """Turn pydantic's report into one line naming the variable a user sets."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    given = first.get("input")
    shown = "" if given is None or isinstance(given, dict) else f" (got {mask_urls_in(str(given))[:80]!r})"
    message = first["msg"].removeprefix("Value error, ")
    more = f"; and {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"setting {ENV_PREFIX}{field.upper()}: {message}{shown}{more}"


def describe_settings(settings: Settings) -> dict[str, str]:
    """The settings as env names and printable values, secrets masked (for `pang config`)."""
    out: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "********" if value.get_secret_value() else ""
        elif isinstance(value, str):
            value = mask_urls_in(value)  # PANG_OPENSEARCH_URL=https://user:pass@host, an S3 endpoint likewise
        out[f"{ENV_PREFIX}{name.upper()}"] = "" if value is None else str(value)
    out["(archive)"] = settings.archive
    return out

