"""Code download credentials open one bundle, for one workload, until they expire, and only when signed
with the server's key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from astrago.auth.code_credentials import KEY_FILE, InvalidCodeCredential, issue, load_key, server_key, verify
from astrago.config import Settings

KEY = b"k" * 64
NOW = 1_800_000_000


def test_a_credential_names_its_workload_until_it_expires() -> None:
    token = issue(KEY, "bundle1", "wl-7", NOW + 60)
    granted = verify(KEY, "bundle1", token, now=NOW)
    assert (granted.workload_id, granted.expires_at) == ("wl-7", NOW + 60)
    with pytest.raises(InvalidCodeCredential, match="expired"):
        verify(KEY, "bundle1", token, now=NOW + 60)


@pytest.mark.parametrize(
    ("bundle", "key", "tamper"),
    [
        ("bundle2", KEY, None),  # another bundle's
        ("bundle1", b"another key", None),  # signed by another server
        ("bundle1", KEY, ("wl-7.", "wl-8.")),  # another workload
        ("bundle1", KEY, (f".{NOW + 60}.", f".{NOW + 999_999}.")),  # a later expiry
    ],
)
def test_a_credential_opens_nothing_else(bundle: str, key: bytes, tamper: tuple[str, str] | None) -> None:
    token = issue(KEY, "bundle1", "wl-7", NOW + 60)
    if tamper:
        token = token.replace(*tamper)
    with pytest.raises(InvalidCodeCredential, match="not valid for this code bundle"):
        verify(key, bundle, token, now=NOW)


@pytest.mark.parametrize("token", ["", "wl-7", "wl-7.soon.abc", "wl-7.123.", ".123.abc", "a user token"])
def test_malformed_credentials_are_refused(token: str) -> None:
    with pytest.raises(InvalidCodeCredential, match="malformed"):
        verify(KEY, "bundle1", token, now=NOW)


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = load_key(None, tmp_path)
    assert len(first) == 64
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_key(None, tmp_path) == first
    assert list(tmp_path.iterdir()) == [tmp_path / KEY_FILE]  # no partial file left behind


def test_a_configured_key_is_shared_by_every_server_process(tmp_path: Path) -> None:
    one = Settings(code_credential_key="shared", data_dir=tmp_path / "core")
    other = Settings(code_credential_key="shared", data_dir=tmp_path / "batch")
    token = issue(server_key(one), "bundle1", "wl-7", NOW + 60)
    assert verify(server_key(other), "bundle1", token, now=NOW).workload_id == "wl-7"
    assert not (tmp_path / "core").exists()  # nothing written when the key is configured
