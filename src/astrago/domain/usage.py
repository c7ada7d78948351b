"""The usage ledger's rules, as pure functions: when a replica's allocation opens and closes, how an
allocation splits into reporting days, and how pieces add up into rows.

Every amount is accumulated as an exact integer (thousandths of a resource × microseconds), so splitting
an allocation at midnight never loses or invents a fraction: the days of a report add up to its total,
and the total is the sum of the allocation intervals, to the microsecond."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astrago.domain.enums import ReplicaState
from astrago.domain.lifecycle import ENDED_REPLICA_STATES, ReplicaFacts

MICROS_PER_HOUR = 3_600_000_000
MILLI = 1000
MIB_PER_GIB = 1024
NO_GPU_MODEL = "none"  # the model key of CPU-only work
UNKNOWN_USER = "(unknown)"  # work whose creator's account is gone, or that had none


# -- when an allocation opens and closes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllocationOpened:
    """A replica started holding its resources (`ended_at` set too when it is first seen already ended,
    e.g. a job that ran and finished while the server was down)."""

    replica_index: int
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AllocationClosed:
    replica_index: int
    ended_at: datetime


AllocationChange = AllocationOpened | AllocationClosed


def _has_started(replica: ReplicaFacts) -> bool:
    return replica.started_at is not None or replica.state == ReplicaState.RUNNING


def _has_ended(replica: ReplicaFacts) -> bool:
    return replica.state in ENDED_REPLICA_STATES


def allocation_change(before: ReplicaFacts, after: ReplicaFacts, now: datetime) -> AllocationChange | None:
    """What one folded observation does to the replica's allocation interval.

    An interval opens when the replica first runs (at the start time the backend recorded, which may lie
    before a server restart) and closes when it ends (at the end time the backend recorded). A replica
    that ended without ever running (e.g. its image could not be pulled) held nothing. Called once per
    change of the replica's row, in the transaction that writes it, so no interval opens twice."""
    if _has_ended(before):
        return None
    if not _has_started(before):
        if not _has_started(after):
            return None
        started = after.started_at or now
        ended = (after.finished_at or now) if _has_ended(after) else None
        return AllocationOpened(after.index, started, max(ended, started) if ended else None)
    if _has_ended(after):
        return AllocationClosed(after.index, after.finished_at or now)
    return None


# -- reporting windows and days ------------------------------------------------------------------


class UsageGroupBy(StrEnum):
    WORKSPACE = "workspace"
    USER = "user"
    MODEL = "model"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open reporting window [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a usage window needs aware datetimes")


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The instant a day begins in `zone`, in UTC (23- and 25-hour days come out right across DST)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_pieces(start: datetime, end: datetime, zone: tzinfo) -> Iterator[tuple[date, datetime, datetime]]:
    """[start, end) cut at each midnight of `zone`: (local day, piece start, piece end), in order."""
    if end <= start:
        return
    day = start.astimezone(zone).date()
    cursor = start
    while cursor < end:
        boundary = local_midnight(day + timedelta(days=1), zone)
        piece_end = min(boundary, end)
        if piece_end > cursor:
            yield day, cursor, piece_end
        cursor = max(cursor, piece_end)
        day += timedelta(days=1)


# -- allocations and their pieces ----------------------------------------------------------------


class Allocation(NamedTuple):
    """One replica run's hold on resources, as the ledger records it. `gpu_milli` is the GPU amount in
    thousandths of one GPU (2 whole GPUs: 2000; a half share: 500; a 1g.10gb MIG slice: 125). A named
    tuple: a report builds tens of thousands of them straight from database rows."""

    workload_id: str
    replica_index: int
    workspace: str
    user: str | None
    gpu_model: str | None
    gpu_milli: int
    cpu_milli: int
    memory_mib: int
    started_at: datetime
    ended_at: datetime | None  # None: still running (counted up to now)
    interval_id: int | None = None  # the ledger row (None: not stored, e.g. in a what-if)


@dataclass(frozen=True, slots=True)
class Piece:
    """The part of one allocation that falls into one reporting day of the window."""

    allocation: Allocation
    day: date
    start: datetime
    end: datetime

    @property
    def micros(self) -> int:
        return _micros(self.end - self.start)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def pieces(allocation: Allocation, window: Window, now: datetime, zone: tzinfo) -> list[Piece]:
    """The allocation clipped to the window (an open one ends now) and cut at the zone's midnights."""
    end = allocation.ended_at or now
    start, end = max(allocation.started_at, window.start), min(end, window.end)
    return [Piece(allocation, day, a, b) for day, a, b in day_pieces(start, end, zone)]


# -- adding up -----------------------------------------------------------------------------------


class Utilisation(Protocol):
    def is_daily(self, allocation: Allocation) -> bool:
        """Whether the allocation's utilisation differs by day (then it is cut at each midnight)."""

    def mean(self, allocation: Allocation, day: date) -> float | None:
        """Mean GPU utilisation (0..1) of the allocation on that day of the window; None: unknown."""


@dataclass(slots=True)
class UsageTotals:
    """Exact integer sums; the hour figures are derived from them."""

    gpu_milli_micros: int = 0
    cpu_milli_micros: int = 0
    memory_mib_micros: int = 0
    measured_gpu_milli_micros: int = 0  # the part of the GPU time whose utilisation is known
    used_gpu_hours: float = 0.0  # over the measured part
    allocations: set[int] = field(default_factory=set)  # positions in the summarised sequence

    def add(self, position: int, allocation: Allocation, micros: int, utilisation: float | None) -> None:
        self.gpu_milli_micros += allocation.gpu_milli * micros
        self.cpu_milli_micros += allocation.cpu_milli * micros
        self.memory_mib_micros += allocation.memory_mib * micros
        if allocation.gpu_milli and utilisation is not None:
            self.measured_gpu_milli_micros += allocation.gpu_milli * micros
            self.used_gpu_hours += (
                allocation.gpu_milli * micros * min(max(utilisation, 0.0), 1.0) / (MILLI * MICROS_PER_HOUR)
            )
        self.allocations.add(position)

    @property
    def gpu_hours(self) -> float:
        return self.gpu_milli_micros / (MILLI * MICROS_PER_HOUR)

    @property
    def gpu_hours_measured(self) -> float:
        return self.measured_gpu_milli_micros / (MILLI * MICROS_PER_HOUR)

    @property
    def gpu_hours_used(self) -> float | None:
        """None when no part of the GPU time has a known utilisation (never 0 for "unknown")."""
        return self.used_gpu_hours if self.measured_gpu_milli_micros else None

    @property
    def cpu_core_hours(self) -> float:
        return self.cpu_milli_micros / (MILLI * MICROS_PER_HOUR)

    @property
    def memory_gib_hours(self) -> float:
        return self.memory_mib_micros / (MIB_PER_GIB * MICROS_PER_HOUR)


def group_key(allocation: Allocation, by: UsageGroupBy) -> str:
    """The row an allocation falls into (by day: each piece's day instead)."""
    if by is UsageGroupBy.WORKSPACE:
        return allocation.workspace
    if by is UsageGroupBy.USER:
        return allocation.user or UNKNOWN_USER
    if by is UsageGroupBy.MODEL:
        return allocation.gpu_model or NO_GPU_MODEL
    raise ValueError("by day, the key is each piece's day")


@dataclass(frozen=True, slots=True)
class UsageSummary:
    rows: list[tuple[str, UsageTotals]]  # sorted by key (days in order)
    total: UsageTotals


class _Days:
    """The window's local days and the UTC instants between them, computed once per report: each
    allocation then finds its days by binary search."""

    def __init__(self, window: Window, zone: tzinfo) -> None:
        split = list(day_pieces(window.start, window.end, zone))
        self.days = [day for day, _, _ in split]
        self.keys = [day.isoformat() for day in self.days]
        self.starts = [start for _, start, _ in split]
        self.end = window.end

    def pieces(self, start: datetime, end: datetime) -> Iterator[tuple[int, datetime, datetime]]:
        """(position of the day, piece start, piece end) for [start, end) inside the window."""
        k = bisect_right(self.starts, start) - 1
        while start < end:
            boundary = self.starts[k + 1] if k + 1 < len(self.starts) else self.end
            piece_end = min(boundary, end)
            yield k, start, piece_end
            start, k = piece_end, k + 1


def summarise(
    allocations: Sequence[Allocation],
    window: Window,
    now: datetime,
    zone: tzinfo,
    by: UsageGroupBy,
    utilisation: Utilisation | None = None,
) -> UsageSummary:
    """Usage per group over the window; the rows add up to the total exactly. By day, every day of the
    window has its row (a chart shows the quiet days too), and each allocation is cut at midnight.
    Used GPU-hours weigh each day's piece of an allocation by its utilisation on that day (so a report
    by workspace and one by day agree on the total used); allocations without telemetry stay whole."""
    days = _Days(window, zone)
    by_day = by is UsageGroupBy.DAY
    day_rows = [UsageTotals() for _ in days.days] if by_day else []
    groups = dict(zip(days.keys, day_rows, strict=True)) if by_day else {}
    total = UsageTotals()
    for position, allocation in enumerate(allocations):
        start = max(allocation.started_at, window.start)
        end = min(allocation.ended_at or now, window.end)
        if end <= start:
            continue
        daily = bool(allocation.gpu_milli) and utilisation is not None and utilisation.is_daily(allocation)
        if not by_day and not daily:
            micros, key = _micros(end - start), group_key(allocation, by)
            groups.setdefault(key, UsageTotals()).add(position, allocation, micros, None)
            total.add(position, allocation, micros, None)
            continue
        group = None if by_day else groups.setdefault(group_key(allocation, by), UsageTotals())
        for k, piece_start, piece_end in days.pieces(start, end):
            micros = _micros(piece_end - piece_start)
            used = utilisation.mean(allocation, days.days[k]) if daily and utilisation is not None else None
            (day_rows[k] if group is None else group).add(position, allocation, micros, used)
            total.add(position, allocation, micros, used)
    return UsageSummary(sorted(groups.items()), total)


def window_days(window: Window, zone: tzinfo) -> Sequence[date]:
    return [day for day, _, _ in day_pieces(window.start, window.end, zone)]


# -- the window a report asks for ----------------------------------------------------------------

DEFAULT_DAYS = 30
MAX_WINDOW = timedelta(days=3660)  # ten years: a report's work stays bounded
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class UsageWindowError(ValueError):
    pass


def time_zone(name: str) -> tzinfo:
    """An IANA zone by name ("UTC", "Asia/Seoul")."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageWindowError(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Asia/Seoul"
        ) from exc


def _instant(value: date | datetime, zone: tzinfo, end: bool) -> datetime:
    """A day means its whole length (`to` includes that day); a time without a zone is in the report's."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone).astimezone(UTC) if value.tzinfo is None else value.astimezone(UTC)
    return local_midnight(value + timedelta(days=1) if end else value, zone)


def usage_window(
    start: date | datetime | None, end: date | datetime | None, zone: tzinfo, now: datetime
) -> Window:
    """The reporting window: by default the last DEFAULT_DAYS days, today included, up to now."""
    try:
        until = _instant(end, zone, end=True) if end is not None else now
        since = (
            _instant(start, zone, end=False)
            if start is not None
            else local_midnight(until.astimezone(zone).date() - timedelta(days=DEFAULT_DAYS - 1), zone)
        )
    except OverflowError as exc:
        raise UsageWindowError("from and to must be dates between 2000 and 9998") from exc
    if since >= until:
        raise UsageWindowError(f"from ({since.isoformat()}) must be before to ({until.isoformat()})")
    if since < EARLIEST:
        raise UsageWindowError("from must be in the year 2000 or later")
    if until - since > MAX_WINDOW:
        raise UsageWindowError("a usage report covers at most ten years; narrow from and to")
    return Window(since, until)


# -- utilisation from samples --------------------------------------------------------------------

SECONDS_PER_HOUR = 3600
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MeasuredSample:
    """One telemetry row as the ledger sees it: what one replica did to one GPU over [at, at + s)."""

    workload_id: str
    replica_index: int
    at: datetime
    sampled_s: int
    util_percent: float | None  # None: not attributable (MIG): adds nothing, never a 0


@dataclass(frozen=True, slots=True)
class Run:
    """An allocation interval a sample may fall into."""

    interval_id: int
    workload_id: str
    replica_index: int
    started_at: datetime
    ended_at: datetime | None


@dataclass(slots=True)
class HourUsage:
    """Measured seconds and utilisation percent × seconds of one interval in one UTC hour."""

    measured_s: float = 0.0
    util_percent_seconds: float = 0.0


def epoch_hour(instant: datetime) -> int:
    return int((instant - EPOCH).total_seconds() // SECONDS_PER_HOUR)


def hourly_usage(samples: Iterable[MeasuredSample], runs: Iterable[Run]) -> dict[tuple[int, int], HourUsage]:
    """What the samples add to the ledger, per (interval, UTC hour): each sample with a utilisation is
    clipped to the run of its replica that holds its period (the newest that started before the period
    ends) and counts in the hour its clipped period starts in. Samples of no run add nothing."""
    by_replica: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        by_replica.setdefault((run.workload_id, run.replica_index), []).append(run)
    for replica_runs in by_replica.values():
        replica_runs.sort(key=lambda run: run.started_at, reverse=True)
    usage: dict[tuple[int, int], HourUsage] = {}
    for sample in samples:
        if sample.util_percent is None or sample.sampled_s <= 0:
            continue
        end = sample.at + timedelta(seconds=sample.sampled_s)
        for run in by_replica.get((sample.workload_id, sample.replica_index), ()):
            if run.started_at >= end:
                continue
            first = max(sample.at, run.started_at)
            last = end if run.ended_at is None else min(end, run.ended_at)
            if last > first:
                seconds = (last - first).total_seconds()
                hour = usage.setdefault((run.interval_id, epoch_hour(first)), HourUsage())
                hour.measured_s += seconds
                hour.util_percent_seconds += min(max(sample.util_percent, 0.0), 100.0) * seconds
            break
    return usage


def usage_after_end(samples: Iterable[MeasuredSample], run: Run) -> dict[tuple[int, int], HourUsage]:
    """What samples counted into a run while it was open, past the end it was then closed at (e.g. a
    job that ended while the server was down, sampled as held until the restart noticed): per
    (interval, hour it was counted in), to take back when the run closes."""
    usage: dict[tuple[int, int], HourUsage] = {}
    if run.ended_at is None:
        return usage
    for sample in samples:
        if sample.util_percent is None or sample.sampled_s <= 0:
            continue
        if (sample.workload_id, sample.replica_index) != (run.workload_id, run.replica_index):
            continue
        first = max(sample.at, run.started_at)
        end = sample.at + timedelta(seconds=sample.sampled_s)
        past = max(first, run.ended_at)
        if end > past:
            seconds = (end - past).total_seconds()
            hour = usage.setdefault((run.interval_id, epoch_hour(first)), HourUsage())
            hour.measured_s += seconds
            hour.util_percent_seconds += min(max(sample.util_percent, 0.0), 100.0) * seconds
    return usage


@dataclass(frozen=True, slots=True)
class DayUsage:
    """An interval's measured seconds and utilisation percent × seconds on one day of the report."""

    interval_id: int
    day: date
    measured_s: float
    util_percent_seconds: float


MEASURED_EPSILON_S = 1e-6  # what is left of a ledger row whose every sample was taken back


class DailyUtilisation:
    """Each interval's mean utilisation on each day, from that day's own samples; unknown (None) on a
    day without any, and for an interval without any at all."""

    def __init__(self, rows: Iterable[DayUsage]) -> None:
        self._means = {
            (row.interval_id, row.day): min(max(row.util_percent_seconds / row.measured_s / 100, 0.0), 1.0)
            for row in rows
            if row.measured_s > MEASURED_EPSILON_S
        }
        self._measured = {interval_id for interval_id, _ in self._means}

    def is_daily(self, allocation: Allocation) -> bool:
        return allocation.interval_id in self._measured

    def mean(self, allocation: Allocation, day: date) -> float | None:
        return self._means.get((allocation.interval_id, day)) if allocation.interval_id is not None else None


@dataclass(frozen=True, slots=True)
class HourOffsets:
    """The report zone's UTC offset (minutes) as a step function of the UTC hour over a window: the
    first hour's offset, then (from this hour on, this offset) at each change (daylight saving). A UTC
    hour belongs to the local day its start falls in: (hour × 60 + offset) // 1440 days after 1970-01-01
    (a zone whose midnight falls inside a UTC hour, e.g. +05:30, counts that hour in the day it starts)."""

    first: int
    changes: tuple[tuple[int, int], ...]

    @staticmethod
    def of(window: Window, zone: tzinfo) -> HourOffsets:
        first_hour, last_hour = epoch_hour(window.start), epoch_hour(window.end)

        def offset(hour: int) -> int:
            instant = EPOCH + timedelta(hours=hour)
            delta = instant.astimezone(zone).utcoffset() or timedelta(0)
            return int(delta.total_seconds() // 60)

        changes: list[tuple[int, int]] = []
        current, hour = offset(first_hour), first_hour
        while hour < last_hour:  # offsets change at most a few times a year: step by days, then narrow
            step = min(24, last_hour - hour)
            if offset(hour + step) == current:
                hour += step
                continue
            low, high = hour, hour + step  # offset(low) == current != offset(high)
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            current, hour = offset(high), high
            changes.append((high, current))
        return HourOffsets(offset(first_hour), tuple(changes))

    @staticmethod
    def day(day_number: int) -> date:
        return EPOCH.date() + timedelta(days=day_number)
