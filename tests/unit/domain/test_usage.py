"""The usage ledger's rules on plain values: when allocations open and close, how they split into days,
and that every report adds up exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrago.domain.enums import ReplicaState as R
from astrago.domain.lifecycle import ReplicaFacts
from astrago.domain.usage import (
    NO_GPU_MODEL,
    UNKNOWN_USER,
    Allocation,
    AllocationClosed,
    AllocationOpened,
    DailyUtilisation,
    DayUsage,
    HourOffsets,
    MeasuredSample,
    Run,
    UsageGroupBy,
    UsageWindowError,
    Window,
    allocation_change,
    day_pieces,
    epoch_hour,
    hourly_usage,
    local_midnight,
    pieces,
    summarise,
    time_zone,
    usage_window,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")


def allocation(
    started: datetime,
    ended: datetime | None,
    *,
    gpu_milli: int = 1000,
    workspace: str = "ml-a",
    user: str | None = "kim",
    model: str | None = "A100-80GB",
    cpu_milli: int = 2000,
    memory_mib: int = 4096,
    index: int = 0,
    workload: str = "w1",
    interval_id: int = 1,
) -> Allocation:
    return Allocation(
        workload, index, workspace, user, model, gpu_milli, cpu_milli, memory_mib, started, ended, interval_id
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


# -- opening and closing -------------------------------------------------------------------------


def test_a_replica_that_starts_running_opens_its_interval_at_the_recorded_start() -> None:
    before = ReplicaFacts(0)
    after = ReplicaFacts(0, R.RUNNING, started_at=at(1, 9))
    assert allocation_change(before, after, NOW) == AllocationOpened(0, at(1, 9))


def test_running_without_a_reported_start_opens_now() -> None:
    assert allocation_change(ReplicaFacts(1), ReplicaFacts(1, R.RUNNING), NOW) == AllocationOpened(1, NOW)


def test_a_replica_that_ends_closes_at_the_recorded_end() -> None:
    running = ReplicaFacts(0, R.RUNNING, started_at=at(1, 9))
    ended = ReplicaFacts(0, R.SUCCEEDED, exit_code=0, started_at=at(1, 9), finished_at=at(1, 11))
    assert allocation_change(running, ended, NOW) == AllocationClosed(0, at(1, 11))


def test_a_job_first_seen_ended_opens_and_closes_at_once() -> None:
    """It ran and finished while the server was down: it ends at its recorded end time, not now."""
    ended = ReplicaFacts(0, R.SUCCEEDED, exit_code=0, started_at=at(1, 9), finished_at=at(1, 10))
    assert allocation_change(ReplicaFacts(0), ended, NOW) == AllocationOpened(0, at(1, 9), at(1, 10))


def test_a_replica_that_never_ran_holds_nothing() -> None:
    failed = ReplicaFacts(0, R.FAILED, reason="image pull failed", finished_at=at(1, 9))
    assert allocation_change(ReplicaFacts(0), failed, NOW) is None
    assert allocation_change(ReplicaFacts(0), ReplicaFacts(0, R.STARTING), NOW) is None


def test_an_ended_replica_changes_nothing_again() -> None:
    ended = ReplicaFacts(0, R.STOPPED, started_at=at(1, 9), finished_at=at(1, 10))
    assert allocation_change(ended, ended, NOW) is None


def test_a_replica_lost_without_an_end_time_closes_now() -> None:
    running = ReplicaFacts(0, R.RUNNING, started_at=at(1, 9))
    assert allocation_change(running, ReplicaFacts(0, R.LOST, started_at=at(1, 9)), NOW) == AllocationClosed(
        0, NOW
    )


def test_a_still_running_replica_changes_nothing() -> None:
    running = ReplicaFacts(0, R.RUNNING, started_at=at(1, 9))
    assert (
        allocation_change(running, ReplicaFacts(0, R.RUNNING, reason="x", started_at=at(1, 9)), NOW) is None
    )


# -- days ----------------------------------------------------------------------------------------


def test_an_interval_across_midnight_splits_exactly_at_midnight() -> None:
    split = list(day_pieces(at(1, 22), at(2, 3), UTC))
    assert split == [(date(2026, 12, 1), at(1, 22), at(2, 0)), (date(2026, 12, 2), at(2, 0), at(2, 3))]


def test_days_follow_the_reporting_time_zone() -> None:
    # 14:00 UTC is 23:00 in Seoul: one hour on the 1st, then the 2nd begins at 15:00 UTC
    split = list(day_pieces(at(1, 14), at(1, 17), SEOUL))
    assert [(d, a, b) for d, a, b in split] == [
        (date(2026, 12, 1), at(1, 14), at(1, 15)),
        (date(2026, 12, 2), at(1, 15), at(1, 17)),
    ]


def test_a_day_across_a_daylight_saving_change_has_its_real_length() -> None:
    day = date(2026, 3, 29)  # Berlin springs forward: 23 hours
    assert local_midnight(day + timedelta(days=1), BERLIN) - local_midnight(day, BERLIN) == timedelta(
        hours=23
    )


def test_an_empty_or_reversed_interval_has_no_pieces() -> None:
    assert list(day_pieces(at(1, 9), at(1, 9), UTC)) == []
    assert list(day_pieces(at(1, 9), at(1, 8), UTC)) == []


def test_open_intervals_count_up_to_now_and_are_clipped_to_the_window() -> None:
    window = Window(at(1, 0), at(3, 0))
    split = pieces(allocation(at(1, 22), None), window, NOW, UTC)
    assert [(p.start, p.end) for p in split] == [(at(1, 22), at(2, 0)), (at(2, 0), NOW)]
    early = pieces(allocation(at(1, 22), None), Window(at(1, 0), at(1, 23)), NOW, UTC)
    assert [(p.start, p.end) for p in early] == [(at(1, 22), at(1, 23))]


# -- summaries -----------------------------------------------------------------------------------


def test_hand_computed_gpu_hours_across_midnight_by_day() -> None:
    """2 GPUs from 22:00 to 03:00: 4 GPU-hours on the 1st, 6 on the 2nd; a half share for 2 hours: 1."""
    window = Window(at(1, 0), at(3, 0))
    allocations = [
        allocation(at(1, 22), at(2, 3), gpu_milli=2000, cpu_milli=4000, memory_mib=8192),
        allocation(at(2, 10), at(2, 12), gpu_milli=500, workload="w2", cpu_milli=1000, memory_mib=1024),
    ]
    summary = summarise(allocations, window, NOW, UTC, UsageGroupBy.DAY)
    by_day = {key: totals for key, totals in summary.rows}
    assert by_day["2026-12-01"].gpu_hours == 4
    assert by_day["2026-12-02"].gpu_hours == 7
    assert summary.total.gpu_hours == 11
    assert by_day["2026-12-01"].cpu_core_hours == 8
    assert summary.total.cpu_core_hours == 20 + 2
    assert summary.total.memory_gib_hours == 8 * 5 + 1 * 2
    assert len(summary.total.allocations) == 2


def test_used_gpu_hours_are_unknown_without_utilisation_never_zero() -> None:
    window = Window(at(1, 0), at(2, 0))
    summary = summarise([allocation(at(1, 9), at(1, 10))], window, NOW, UTC, UsageGroupBy.USER)
    assert summary.total.gpu_hours == 1
    assert summary.total.gpu_hours_used is None
    mig = DailyUtilisation([DayUsage(1, date(2026, 12, 1), 0.0, 0.0)])  # rows, none with a utilisation
    unknown = summarise([allocation(at(1, 9), at(1, 10))], window, NOW, UTC, UsageGroupBy.USER, mig)
    assert unknown.total.gpu_hours_used is None
    assert unknown.total.gpu_hours_measured == 0


def test_used_gpu_hours_weigh_allocated_hours_by_utilisation_where_known() -> None:
    window = Window(at(1, 0), at(2, 0))
    busy = allocation(at(1, 9), at(1, 11), gpu_milli=2000)  # 4 GPU-hours at 25 %
    unmeasured = allocation(at(1, 12), at(1, 13), workload="w2", interval_id=2)  # utilisation unknown
    utilisation = DailyUtilisation([DayUsage(1, date(2026, 12, 1), 7200, 25.0 * 7200)])
    for by in UsageGroupBy:
        summary = summarise([busy, unmeasured], window, NOW, UTC, by, utilisation)
        assert summary.total.gpu_hours == 5
        assert summary.total.gpu_hours_used == pytest.approx(1.0)
        assert summary.total.gpu_hours_measured == 4


def test_groups_by_workspace_user_and_model_with_names_for_the_missing() -> None:
    window = Window(at(1, 0), at(2, 0))
    allocations = [
        allocation(at(1, 1), at(1, 2), workspace="ml-a", user="kim"),
        allocation(at(1, 1), at(1, 3), workspace="ml-b", user=None, model=None, gpu_milli=0, workload="w2"),
    ]
    users = summarise(allocations, window, NOW, UTC, UsageGroupBy.USER)
    assert [key for key, _ in users.rows] == [UNKNOWN_USER, "kim"]
    models = summarise(allocations, window, NOW, UTC, UsageGroupBy.MODEL)
    assert {key: t.gpu_hours for key, t in models.rows} == {"A100-80GB": 1, NO_GPU_MODEL: 0}
    spaces = summarise(allocations, window, NOW, UTC, UsageGroupBy.WORKSPACE)
    assert {key: t.cpu_core_hours for key, t in spaces.rows} == {"ml-a": 2, "ml-b": 4}


def test_a_naive_window_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Window(datetime(2026, 12, 1), NOW)


# -- properties ----------------------------------------------------------------------------------

BASE = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=400 * 86_400 * 1_000_000).map(
    lambda us: BASE + timedelta(microseconds=us)
)
zones = st.sampled_from([UTC, SEOUL, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")])


@st.composite
def allocations(draw: st.DrawFn) -> Allocation:
    start = draw(instants)
    length = draw(st.integers(min_value=0, max_value=20 * 86_400 * 1_000_000))
    ended = draw(st.booleans())
    return allocation(
        start,
        start + timedelta(microseconds=length) if ended else None,
        gpu_milli=draw(st.sampled_from([0, 125, 500, 1000, 8000])),
        cpu_milli=draw(st.integers(0, 64_000)),
        memory_mib=draw(st.integers(0, 1 << 20)),
        workload=draw(st.sampled_from(["a", "b", "c"])),
        index=draw(st.integers(0, 3)),
        user=draw(st.sampled_from(["kim", "lee", None])),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(allocations(), max_size=12), instants, instants, zones, st.sampled_from(list(UsageGroupBy)))
def test_rows_add_up_to_the_total_and_the_total_to_the_intervals(
    items: list[Allocation], a: datetime, b: datetime, zone: ZoneInfo, by: UsageGroupBy
) -> None:
    window = Window(min(a, b), max(a, b))
    now = BASE + timedelta(days=420)
    summary = summarise(items, window, now, zone, by)
    assert sum(t.gpu_milli_micros for _, t in summary.rows) == summary.total.gpu_milli_micros
    assert sum(t.cpu_milli_micros for _, t in summary.rows) == summary.total.cpu_milli_micros
    assert sum(t.memory_mib_micros for _, t in summary.rows) == summary.total.memory_mib_micros
    # the total is each interval's overlap with the window, computed without splitting
    expected = 0
    for item in items:
        start, end = max(item.started_at, window.start), min(item.ended_at or now, window.end)
        if end > start:
            expected += item.gpu_milli * ((end - start) // timedelta(microseconds=1))
    assert summary.total.gpu_milli_micros == expected


@settings(max_examples=150, deadline=None)
@given(instants, st.integers(min_value=0, max_value=60 * 86_400 * 1_000_000), zones)
def test_day_pieces_tile_the_interval_each_inside_its_local_day(
    start: datetime, length: int, zone: ZoneInfo
) -> None:
    end = start + timedelta(microseconds=length)
    split = list(day_pieces(start, end, zone))
    if length == 0:
        assert split == []
        return
    assert split[0][1] == start
    assert split[-1][2] == end
    for (day, a, b), following in zip(split, [*split[1:], None], strict=True):
        assert a < b
        assert local_midnight(day, zone) <= a
        assert b <= local_midnight(day + timedelta(days=1), zone)
        if following is not None:
            assert following[1] == b
            assert following[0] == day + timedelta(days=1)


# -- windows -------------------------------------------------------------------------------------


def test_a_day_window_covers_whole_days_with_the_end_day_included() -> None:
    window = usage_window(date(2026, 12, 1), date(2026, 12, 1), UTC, NOW)
    assert (window.start, window.end) == (at(1, 0), at(2, 0))
    seoul = usage_window(date(2026, 12, 1), date(2026, 12, 1), SEOUL, NOW)
    assert (seoul.start, seoul.end) == (at(1, 0) - timedelta(hours=9), at(2, 0) - timedelta(hours=9))


def test_instants_are_kept_and_times_without_a_zone_are_in_the_reports() -> None:
    window = usage_window(at(1, 9, 30), datetime(2026, 12, 1, 21, 0), SEOUL, NOW)
    assert (window.start, window.end) == (at(1, 9, 30), at(1, 12))


def test_the_default_window_is_the_last_30_days_up_to_now() -> None:
    window = usage_window(None, None, UTC, NOW)
    assert (window.start, window.end) == (datetime(2026, 11, 3, tzinfo=UTC), NOW)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 12, 3), date(2026, 12, 1), "must be before to"),
        (date(1999, 1, 1), date(1999, 2, 1), "2000 or later"),
        (date(2000, 1, 1), date(2026, 1, 1), "at most ten years"),
        (None, date(9999, 12, 31), "between 2000 and 9998"),
    ],
)
def test_bad_windows_are_refused_with_a_reason(start: date | None, end: date | None, message: str) -> None:
    with pytest.raises(UsageWindowError, match=message):
        usage_window(start, end, UTC, NOW)


def test_an_unknown_time_zone_is_refused_by_name() -> None:
    assert time_zone("Asia/Seoul") == SEOUL
    for name in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(UsageWindowError, match="unknown time zone"):
            time_zone(name)


# -- utilisation from samples --------------------------------------------------------------------


def test_daily_utilisation_is_each_intervals_mean_per_day_and_unknown_without_samples() -> None:
    day, next_day = date(2026, 12, 1), date(2026, 12, 2)
    utilisation = DailyUtilisation(
        [
            DayUsage(1, day, 600, 20.0 * 300 + 60.0 * 300),
            DayUsage(2, day, 0, 0.0),  # MIG: rows without a utilisation add no measured seconds
            DayUsage(3, day, 10, 150.0 * 10),  # a source that over-reports is capped at 100 %
        ]
    )
    assert utilisation.mean(allocation(at(1, 9), None), day) == pytest.approx(0.4)
    assert utilisation.mean(allocation(at(1, 9), None), next_day) is None  # a day without samples
    assert utilisation.mean(allocation(at(1, 9), None, interval_id=2), day) is None  # never 0
    assert not utilisation.is_daily(allocation(at(1, 9), None, interval_id=2))
    assert utilisation.mean(allocation(at(1, 9), None, interval_id=9), day) is None
    assert utilisation.mean(allocation(at(1, 9), None, interval_id=3), day) == 1.0


def test_each_days_used_gpu_hours_come_from_that_days_samples() -> None:
    window = Window(at(1, 0), at(4, 0))
    utilisation = DailyUtilisation(
        [DayUsage(1, date(2026, 12, 1), 3600, 50.0 * 3600), DayUsage(1, date(2026, 12, 2), 7200, 10.0 * 7200)]
    )
    job = allocation(at(1, 23), at(3, 1))  # 1 h on the 1st, 24 h on the 2nd, 1 h on the 3rd (no samples)
    summary = summarise([job], window, NOW, UTC, UsageGroupBy.DAY, utilisation)
    used = {key: totals.gpu_hours_used for key, totals in summary.rows}
    assert used == {"2026-12-01": pytest.approx(0.5), "2026-12-02": pytest.approx(2.4), "2026-12-03": None}
    assert summary.total.gpu_hours_used == pytest.approx(2.9)
    assert summary.total.gpu_hours_measured == 25
    assert summary.total.gpu_hours == 26
    for by in (UsageGroupBy.WORKSPACE, UsageGroupBy.USER, UsageGroupBy.MODEL):  # every grouping agrees
        whole = summarise([job], window, NOW, UTC, by, utilisation)
        assert whole.total.gpu_hours_used == pytest.approx(2.9)
        assert whole.total.gpu_hours_measured == 25
        assert [totals.gpu_hours_used for _, totals in whole.rows] == [pytest.approx(2.9)]


def test_samples_count_in_their_runs_hour_clipped_to_the_run_and_mig_adds_nothing() -> None:
    runs = [
        Run(1, "w1", 0, at(1, 9, 0) + timedelta(seconds=5), at(1, 10)),  # first run of the replica
        Run(2, "w1", 0, at(1, 10, 30), None),  # its second run (requeued)
    ]
    samples = [
        MeasuredSample("w1", 0, at(1, 9), 10, 50.0),  # 5 s of it inside the first run
        MeasuredSample("w1", 0, at(1, 9, 59) + timedelta(seconds=50), 10, 100.0),
        MeasuredSample("w1", 0, at(1, 10, 10), 10, 80.0),  # between the runs: no run holds it
        MeasuredSample("w1", 0, at(1, 10, 30), 10, 20.0),
        MeasuredSample("w1", 0, at(1, 11), 10, None),  # MIG: unknown, adds nothing
        MeasuredSample("w2", 0, at(1, 11), 10, 70.0),  # no interval of that replica
    ]
    usage = hourly_usage(samples, runs)
    nine, ten = epoch_hour(at(1, 9)), epoch_hour(at(1, 10))
    assert set(usage) == {(1, nine), (2, ten)}
    assert usage[(1, nine)].measured_s == 15
    assert usage[(1, nine)].util_percent_seconds == 50.0 * 5 + 100.0 * 10
    assert usage[(2, ten)].measured_s == 10
    assert usage[(2, ten)].util_percent_seconds == 200.0


def test_hour_offsets_follow_daylight_saving_inside_the_window() -> None:
    window = Window(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    offsets = HourOffsets.of(window, BERLIN)
    change = epoch_hour(datetime(2026, 3, 29, 1, tzinfo=UTC))  # 02:00 CET becomes 03:00 CEST
    assert offsets.first == 60
    assert offsets.changes == ((change, 120),)
    assert HourOffsets.of(window, UTC) == HourOffsets(0, ())
    assert HourOffsets.day(epoch_hour(datetime(2026, 3, 29, 22, tzinfo=UTC)) * 60 // 1440) == date(
        2026, 3, 29
    )
