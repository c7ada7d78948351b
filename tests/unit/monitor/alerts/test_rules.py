"""The pure rules of alerting: backoff, idleness, postponement, signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astrago.monitor.alerts.rules import (
    IdleEvidence,
    IdleRule,
    is_idle,
    open_key,
    postponed_stop,
    retry_delay_s,
)
from astrago.monitor.alerts.signing import signature, verify

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SINCE = T0 - timedelta(minutes=45)


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [retry_delay_s(n, 10, 900) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 640, 900]


def test_open_keys_of_different_rules_never_collide() -> None:
    assert open_key("a-b", "c") != open_key("a", "b-c")


def _evidence(**changes: object) -> IdleEvidence:
    base = {
        "running_since": T0 - timedelta(hours=2),
        "last_request_at": None,
        "mean_gpu_percent": 1.0,
        "samples": 30,
    }
    return IdleEvidence(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "idle"),
    [
        ({}, True),
        ({"mean_gpu_percent": 5.0}, False),  # at the threshold is busy
        ({"mean_gpu_percent": None, "samples": 0}, False),  # unmeasured is never idle
        ({"samples": 0}, False),
        ({"last_request_at": SINCE + timedelta(seconds=1)}, False),  # a request in the window
        ({"last_request_at": SINCE - timedelta(seconds=1)}, True),  # before the window
        ({"running_since": SINCE + timedelta(minutes=1)}, False),  # not running the whole window
    ],
)
def test_idle_needs_low_gpu_no_traffic_and_the_whole_window(changes: dict[str, object], idle: bool) -> None:
    assert is_idle(_evidence(**changes), SINCE, below_percent=5.0) is idle


def test_the_warning_comes_warn_before_ahead_of_the_stop() -> None:
    rule = IdleRule(
        gpu_util_below_percent=5, idle_for_s=3600, warn_before_s=900, postpone_s=3600, max_postpone_s=0
    )
    assert rule.warn_after_s == 2700


def test_keep_postpones_up_to_the_hard_cap_then_refuses() -> None:
    stop_at = T0 + timedelta(minutes=15)
    latest = stop_at + timedelta(hours=4)
    first = postponed_stop(stop_at, T0, 3600, latest)
    assert first == stop_at + timedelta(hours=1)
    capped = postponed_stop(stop_at + timedelta(hours=3, minutes=30), T0, 3600, latest)
    assert capped == latest
    assert postponed_stop(latest, T0, 3600, latest) is None


def test_a_signature_checks_body_secret_and_timestamp() -> None:
    body = b'{"event":"fired"}'
    header = signature("s3cret", 1_800_000_000, body)
    assert header.startswith("sha256=")
    assert verify("s3cret", "1800000000", header, body, now=1_800_000_010)
    assert not verify("other", "1800000000", header, body, now=1_800_000_010)
    assert not verify("s3cret", "1800000000", header, body + b" ", now=1_800_000_010)
    assert not verify("s3cret", "1800000000", header, body, now=1_800_000_000 + 301)  # a replay, later
    assert not verify("s3cret", "not-a-time", header, body, now=1_800_000_010)
