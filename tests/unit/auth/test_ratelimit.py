from __future__ import annotations

from astrago.auth.ratelimit import LoginThrottle, SlidingWindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_eleventh_failure_in_a_minute_is_refused_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(limit=10, window_s=60, clock=clock)
    for _ in range(10):
        assert limiter.retry_after("alice") == 0
        limiter.record("alice")
        clock.now += 1
    assert limiter.retry_after("alice") == 50  # now t=1010; the first failure (t=1000) leaves at 1060
    clock.now = 1060.5
    assert limiter.retry_after("alice") == 0
    assert limiter.retry_after("bob") == 0  # per key


def test_throttle_counts_per_account_and_per_address_and_success_clears_the_account() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        per_account=SlidingWindowLimiter(3, 60, clock=clock),
        per_address=SlidingWindowLimiter(5, 60, clock=clock),
    )
    for _ in range(3):
        throttle.failed("Alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.2") > 0  # account names are case-insensitive
    throttle.succeeded("alice")
    assert throttle.retry_after("alice", "10.0.0.2") == 0
    throttle.failed("carol", "10.0.0.1")
    throttle.failed("dave", "10.0.0.1")
    assert throttle.retry_after("erin", "10.0.0.1") > 0  # 5 failures from one address, any names
    assert throttle.retry_after("erin", "10.0.0.9") == 0
