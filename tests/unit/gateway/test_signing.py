"""Signed proxy tickets and cookies: bound to their purpose and workload, expiring, unforgeable."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from astrago.gateway.signing import ProxyGrant, SignedValueError, Signer


def grant(purpose: str = "ticket", workload_id: str = "wl-1", ttl_s: float = 60) -> ProxyGrant:
    return ProxyGrant(
        purpose=purpose, user_id="u-1", workload_id=workload_id, expires_at=time.time() + ttl_s, nonce="n"
    )


def test_a_signed_grant_verifies_for_its_purpose_and_workload(tmp_path: Path) -> None:
    signer = Signer.load(None, tmp_path)
    ticket = grant()
    assert signer.verify(signer.sign(ticket), "ticket", "wl-1") == ticket


@pytest.mark.parametrize(
    ("value", "purpose", "workload_id", "why"),
    [
        (grant("ticket"), "cookie", "wl-1", "a ticket is not a cookie"),
        (grant("cookie"), "ticket", "wl-1", "a cookie is not a ticket"),
        (grant(workload_id="wl-2"), "ticket", "wl-1", "another workload's ticket"),
        (grant(ttl_s=-1), "ticket", "wl-1", "an expired ticket"),
    ],
)
def test_a_grant_is_refused_out_of_its_use(
    tmp_path: Path, value: ProxyGrant, purpose: str, workload_id: str, why: str
) -> None:
    signer = Signer.load(None, tmp_path)
    with pytest.raises(SignedValueError):
        signer.verify(signer.sign(value), purpose, workload_id)


def test_a_tampered_or_foreign_value_is_refused(tmp_path: Path) -> None:
    signer = Signer.load(None, tmp_path)
    signed = signer.sign(grant())
    payload, mac = signed.split(".")
    forged = Signer.load("another key", tmp_path).sign(grant())
    for value in (forged, f"{payload}x.{mac}", f"{payload}.", "garbage", ""):
        with pytest.raises(SignedValueError):
            signer.verify(value, "ticket", "wl-1")


def test_the_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    first = Signer.load(None, tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "gateway.key").st_mode)
    assert mode == 0o600
    assert Signer.load(None, tmp_path).key == first.key
    assert Signer.load("configured", tmp_path).key != first.key
