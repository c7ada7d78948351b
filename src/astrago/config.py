"""One Settings object for every part of AstraGo.

Sources, strongest first: explicit keyword arguments (CLI flags), environment variables `ASTRAGO_*`,
an optional YAML file (`ASTRAGO_CONFIG` or `<data dir>/config.yaml`), then the defaults below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url

from astrago.domain.enums import OrphanPolicy


def default_data_dir() -> Path:
    return Path(os.environ.get("ASTRAGO_DATA_DIR") or Path.home() / ".astrago")


class ConfigFileError(ValueError):
    pass


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads `ASTRAGO_CONFIG` (or `<data dir>/config.yaml` when present)."""

    def _load(self) -> dict[str, Any]:
        explicit = os.environ.get("ASTRAGO_CONFIG")
        path = Path(explicit) if explicit else default_data_dir() / "config.yaml"
        if not path.exists():
            if explicit:
                raise ConfigFileError(f"config file {path} (ASTRAGO_CONFIG) does not exist")
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigFileError(f"config file {path} must hold a mapping of setting: value")
        return data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._load().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._load()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASTRAGO_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: SQLite (WAL) at <data_dir>/astrago.db
    # The database password when it is kept apart from the URL (e.g. from a Kubernetes Secret of the
    # database's own chart): set on the URL as is, so it needs no URL-escaping.
    database_password: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    admin_password: str | None = None
    backend: Literal["local", "kubernetes"] = "local"
    simulate_gpus: str | None = None  # e.g. "4xA100-80GB" or "2xA100-80GB,2xH100-80GB"
    # How often the server reads its GPUs' health (`gpu_source` on one machine, Prometheus on Kubernetes).
    gpu_health_interval_s: float = Field(10.0, gt=0)
    # Kubernetes: the Prometheus scraping the GPU exporter's health series (unset: telemetry_prometheus_url)
    gpu_health_prometheus_url: str | None = None
    scheduler_policy: str = "bestfit"
    scheduling_interval_s: float = 2.0
    stop_grace_s: float = 10.0
    # Login sessions end after `session_idle_s` without use, and `session_absolute_s` after login whatever.
    session_idle_s: int = Field(2 * 3600, ge=1)
    session_absolute_s: int = Field(12 * 3600, ge=1)
    token_ttl_s: int | None = Field(None, ge=1)  # the older name of session_absolute_s, still honoured
    api_token_default_days: int = Field(90, ge=1, le=3650)
    # Failed password logins allowed per account and per client address in a sliding window.
    login_failures_per_account: int = Field(10, ge=1)
    login_failures_per_address: int = Field(30, ge=1)
    login_failure_window_s: int = Field(60, ge=1)
    password_min_length: int = Field(8, ge=8, le=128)
    # Single sign-on (OIDC, e.g. Keycloak realm `astrago`): enabled when an issuer is set.
    public_url: str | None = None  # how browsers reach this server; default: the URL of the request
    oidc_issuer: str | None = None
    oidc_client_id: str = "astrago-client"
    oidc_client_secret: str | None = None
    oidc_cli_client_id: str = "astrago-cli"  # public client for `astrago login --sso` (device grant)
    oidc_audience: str | None = None  # required `aud` of bearer access tokens; default: oidc_client_id
    oidc_scopes: str = "openid profile email"
    oidc_admin_roles: list[str] = Field(default_factory=lambda: ["astrago-admin"])
    oidc_role_claims: list[str] = Field(default_factory=lambda: ["realm_access.roles"])
    oidc_group_claim: str = "groups"
    oidc_group_prefix: str = "/astrago/"  # group <prefix><workspace>/<role> gives that workspace role
    oidc_recheck_s: int = Field(300, ge=0)  # sessions are re-checked at the IdP (refresh) this often
    oidc_leeway_s: int = Field(60, ge=0, le=600)  # clock skew allowed on exp/iat/nbf
    oidc_tls_verify: bool | str = True  # or a CA bundle path, for an IdP behind a private CA
    code_bundle_max_mib: int = Field(100, ge=1, le=10240)  # the largest directory `astrago run` may upload
    code_bundle_retention_days: float = Field(7, gt=0)  # kept longer while an unfinished workload needs one
    # Signs the pods' code download credentials; every server process must share it (the chart sets it
    # from its Secret). Unset: a key made once in the data directory.
    code_credential_key: SecretStr | None = None
    code_credential_ttl_hours: float = Field(168, gt=0)  # and never past the end of the workload
    log_level: str = "info"
    # Requests with a larger body are refused with 413 (routes that stream uploads set their own limit).
    max_request_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Volumes: where their files live (default <data_dir>/volumes; on Kubernetes, the shared volume the
    # chart mounts into the server), and how long an upload may sit unfinished before it is removed.
    volumes_dir: Path | None = None
    upload_expiry_s: int = Field(24 * 3600, ge=1)
    upload_cleanup_interval_s: float = Field(60.0, gt=0)
    volumes_claim: str = "astrago-volumes"  # Kubernetes: the ReadWriteMany claim holding every volume
    # Kubernetes backend
    kubeconfig: str | None = None
    namespace: str = "astrago"
    storage_class: str = "astrago-nfs-csi"
    image_registry: str | None = None
    image_pull_secrets: list[str] = Field(default_factory=list)
    shared_gpu_resource: str = "nvidia.com/gpu.shared"
    # The API as pods reach it (the core Service, e.g. http://astrago-core.astrago:8080): where a
    # workload's init container downloads its code bundle from.
    internal_url: str | None = None
    code_fetch_image: str | None = None  # the init container's image (needs python3); default: the workload's
    # Backend objects whose workload is unknown. An enum, not a string: the backend compares members, and
    # "delete" from the environment or a YAML file must arrive as OrphanPolicy.DELETE.
    orphan_policy: OrphanPolicy = OrphanPolicy.REPORT
    # Local sandbox (docs/security.md)
    sandbox_bwrap: str = "bwrap"  # the bubblewrap binary; without a working one: single-user mode
    # workspace uids start here (root servers only); above systemd's container range, below 2^31
    sandbox_uid_base: int = Field(default=1_900_000_000, ge=1000, le=2**31 - 2**20)
    sandbox_hide_paths: list[Path] = Field(default_factory=list)  # more host paths no workload may see
    # host directories every workload sees at the same path, read-write ("PATH") or read-only ("PATH:ro"),
    # e.g. a shared scratch or datasets directory (the rest of the host file system is read-only to jobs)
    sandbox_shared_paths: list[str] = Field(default_factory=list)
    workload_env_passthrough: list[str] = Field(default_factory=list)  # server variables workloads inherit
    # TLS for `astrago server`
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_min_version: Literal["1.2", "1.3"] = "1.3"

    @model_validator(mode="after")
    def _older_names(self) -> Settings:
        if self.token_ttl_s is not None and "session_absolute_s" not in self.model_fields_set:
            self.session_absolute_s = self.token_ttl_s
        return self

    # Signs the gateway's proxy tickets and cookies; every API process must share it (else a generated
    # key in <data_dir>/gateway.key is used).
    gateway_key: str | None = None
    # How long finished replicas' logs archived in the database are kept (backends without durable logs).
    log_retention_days: float = 30.0
    # Alerts (docs/monitor.md): how often the built-in rules are evaluated and deliveries retried.
    alert_evaluation_interval_s: float = Field(30.0, gt=0)
    alert_delivery_interval_s: float = Field(2.0, gt=0)  # how often due deliveries are looked for
    alert_delivery_attempts: int = Field(6, ge=1, le=50)
    alert_retry_base_s: float = Field(10.0, gt=0)  # backoff: base, 2·base, 4·base, ... up to the cap
    alert_retry_max_s: float = Field(900.0, gt=0)
    alert_send_timeout_s: float = Field(10.0, gt=0)
    # Built-in rules' defaults (an admin overrides them with `astrago alert rule set`).
    alert_gpu_idle_percent: float = Field(5.0, ge=0, le=100)
    alert_gpu_idle_for_s: float = Field(1800.0, gt=0)
    alert_pending_for_s: float = Field(1800.0, gt=0)
    alert_quota_percent: float = Field(90.0, ge=0, le=100)
    alert_node_lost_after_s: float = Field(180.0, gt=0)
    # Email channels send through this SMTP server.
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "astrago@localhost"
    # Idle reclaim: the platform's policy for interactive workloads (admins add per-workspace and per-kind
    # policies; a batch job is reclaimed only under a policy for its kind). Off with reclaim_interactive.
    reclaim_interactive: bool = True
    reclaim_gpu_util_below_percent: float = Field(5.0, gt=0, le=100)
    reclaim_idle_for_s: float = Field(3600.0, gt=0)
    reclaim_warn_before_s: float = Field(900.0, gt=0)
    reclaim_postpone_s: float = Field(3600.0, gt=0)
    reclaim_max_postpone_s: float = Field(4 * 3600.0, ge=0)
    # How often the gateway writes the workloads' last request times to the database.
    activity_flush_interval_s: float = Field(30.0, gt=0)
    # GPU telemetry (docs/monitor.md). The source: nvml | smi | replay:PATH | scripted:PATH | none; unset:
    # NVML (else nvidia-smi) where a driver is present, none on simulated GPUs (they have no utilisation).
    gpu_source: str | None = None
    telemetry_interval_s: int = Field(10, ge=1, le=300)  # one sample per GPU and replica this often
    telemetry_raw_retention_s: float = Field(24 * 3600, ge=600)  # then rolled up into 5-minute rows...
    telemetry_retention_days: float = Field(90, gt=0)  # ...kept this long
    # Kubernetes: the Prometheus that scrapes the GPU exporter (`gpu_process_*` series with pod labels)
    telemetry_prometheus_url: str | None = None
    # The usage ledger's reporting days begin at midnight in this IANA time zone (e.g. Asia/Seoul).
    usage_time_zone: str = "UTC"

    @field_validator("usage_time_zone", mode="after")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from astrago.domain.usage import time_zone

        time_zone(value)  # a clear error at start, not at the first report
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def effective_database_url(self) -> str:
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'astrago.db'}"
        if self.database_password is None:
            return self.database_url
        url = make_url(self.database_url).set(password=self.database_password.get_secret_value())
        return url.render_as_string(hide_password=False)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is SQLite on a file."""
        url = self.effective_database_url
        prefix = next((p for p in ("sqlite+aiosqlite:///", "sqlite:///") if url.startswith(p)), None)
        if prefix is None or url[len(prefix) :] in ("", ":memory:"):
            return None
        return Path(url[len(prefix) :].split("?", 1)[0])

    @property
    def effective_volumes_dir(self) -> Path:
        return (self.volumes_dir or self.data_dir / "volumes").expanduser()

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


# Settings that hold secrets: read once, then removed from the server's environment (see scrub_secrets).
SECRET_ENVIRONMENT = ("ASTRAGO_ADMIN_PASSWORD", "ASTRAGO_DATABASE_URL")
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "PRIVATE_KEY")


def scrub_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Remove secret `ASTRAGO_*` settings from this process's environment once the settings are read, and
    overwrite them where `/proc/<pid>/environ` still shows them (unsetenv only drops the pointer to the
    original bytes). The names removed."""
    env = os.environ if environ is None else environ
    names = [
        name
        for name in list(env)
        if name in SECRET_ENVIRONMENT
        or (name.startswith("ASTRAGO_") and any(word in name for word in _SECRET_WORDS))
    ]
    for name in names:
        if environ is None:
            _wipe_initial_environment(name)
        env.pop(name, None)
    return names


def _wipe_initial_environment(name: str) -> None:
    """Zero the value of `name` in the initial environment block (what /proc/<pid>/environ reads)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    except (OSError, ValueError):
        return
    prefix = f"{name}=".encode()
    index = 0
    while (address := environ[index]) is not None:
        entry = ctypes.string_at(address)
        if entry.startswith(prefix):
            ctypes.memset(address + len(prefix), 0, len(entry) - len(prefix))
        index += 1
