"""One Settings object for every part of AstraGo.

Sources, strongest first: explicit keyword arguments (CLI flags), environment variables `ASTRAGO_*`,
an optional YAML file (`ASTRAGO_CONFIG` or `<data dir>/config.yaml`), then the defaults below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


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
    host: str = "127.0.0.1"
    port: int = 8080
    admin_password: str | None = None
    backend: Literal["local", "kubernetes"] = "local"
    simulate_gpus: str | None = None  # e.g. "4xA100-80GB" or "2xA100-80GB,2xH100-80GB"
    scheduler_policy: str = "bestfit"
    scheduling_interval_s: float = 2.0
    stop_grace_s: float = 10.0
    token_ttl_s: int = 12 * 3600
    code_bundle_max_mib: int = Field(100, ge=1, le=10240)  # the largest directory `astrago run` may upload
    code_bundle_retention_days: float = Field(7, gt=0)  # kept longer while an unfinished workload needs one
    # Signs the pods' code download credentials; every server process must share it (the chart sets it
    # from its Secret). Unset: a key made once in the data directory.
    code_credential_key: SecretStr | None = None
    code_credential_ttl_hours: float = Field(168, gt=0)  # and never past the end of the workload
    log_level: str = "info"
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
    orphan_policy: Literal["report", "delete"] = "report"  # backend objects whose workload is unknown
    # Signs the gateway's proxy tickets and cookies; every API process must share it (else a generated
    # key in <data_dir>/gateway.key is used).
    gateway_key: str | None = None
    # How long finished replicas' logs archived in the database are kept (backends without durable logs).
    log_retention_days: float = 30.0

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
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'astrago.db'}"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"
