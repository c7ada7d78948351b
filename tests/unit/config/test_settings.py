"""Settings turn text from the environment and the config file into the types the code compares."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from astrago.config import Settings
from astrago.domain.enums import OrphanPolicy


def test_orphan_policy_from_the_environment_is_the_enum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ASTRAGO_ORPHAN_POLICY", "delete")
    settings = Settings(data_dir=tmp_path)
    assert settings.orphan_policy is OrphanPolicy.DELETE


def test_orphan_policy_from_the_config_file_is_the_enum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("orphan_policy: delete\n")
    monkeypatch.setenv("ASTRAGO_CONFIG", str(config))
    assert Settings(data_dir=tmp_path).orphan_policy is OrphanPolicy.DELETE


def test_an_unknown_orphan_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="orphan_policy"):
        Settings(data_dir=tmp_path, orphan_policy="purge")


def test_a_database_password_kept_apart_is_set_on_the_url_unescaped(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="mysql+asyncmy://astrago@db:3306/astrago?charset=utf8mb4",
        database_password="p@ss:w/rd%",
    )
    url = make_url(settings.effective_database_url)
    assert url.password == "p@ss:w/rd%"
    assert (url.host, url.port, url.database, url.query) == ("db", 3306, "astrago", {"charset": "utf8mb4"})
    assert "p@ss" not in repr(settings)  # a secret, not shown in logs
