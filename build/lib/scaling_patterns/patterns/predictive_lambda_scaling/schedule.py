"""From a weekly load profile to a short list of scheduled actions (pure; no cdktf, no AWS).

A *profile* is the expected peak concurrency for each of the 168 hours of a week, in local
time of the schedule's time zone: index ``day * 24 + hour`` with Monday = 0. It comes from
settings (``peaks``) or from a CSV of observed hourly peaks (``profile_from_csv``).

``derive_schedule`` turns it into scheduled actions on the provisioned-concurrency
minimum:

1. an hour is a *peak hour* when its expected concurrency is above the baseline minimum;
2. adjacent peak hours form one window (the week wraps: Sunday 23:00 is next to Monday
   00:00); windows separated by a gap of at most ``merge_gap_hours``, or by a gap shorter
   than the lead time, are merged as well, so the minimum is not lowered only to be raised
   again minutes later;
3. each window raises the minimum to its highest hour ``lead_minutes`` before it starts and
   lowers it back to the baseline when it ends;
4. actions with the same kind, local time and capacity on several days become one action
   with a day-of-week list (``MON-FRI``), so a weekday peak costs two actions, not ten.

Times are local: each action carries the time zone, and Application Auto Scaling evaluates
the cron expression in it (daylight-saving changes included).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

HOURS_PER_WEEK = 168
MINUTES_PER_WEEK = HOURS_PER_WEEK * 60
#: Day names in ``datetime.weekday()`` order (Monday = 0).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Cron day-of-week order in AWS (1 = SUN ... 7 = SAT); ranges are written only within it.
_CRON_ORDER = (6, 0, 1, 2, 3, 4, 5)

Profile = tuple[int, ...]  # 168 expected peak concurrencies, Monday 00:00 first


class ProfileError(ValueError):
    """A load profile or CSV that cannot be turned into a schedule."""


@dataclass(frozen=True)
class Window:
    """A merged peak window: ``hours`` hours from hour-of-week ``start``, at minimum ``level``."""

    start: int
    hours: int
    level: int

    @property
    def end(self) -> int:
        return (self.start + self.hours) % HOURS_PER_WEEK


@dataclass(frozen=True)
class ScheduledChange:
    """One scheduled action: set the minimum to ``min_capacity`` at ``hour:minute`` on ``days``."""

    kind: str  # "raise" or "lower"
    days: tuple[int, ...]  # weekday numbers, Monday = 0, ascending
    hour: int
    minute: int
    min_capacity: int

    @property
    def day_expression(self) -> str:
        """Cron day-of-week field: ``*``, ``MON-FRI``, ``SUN,SAT`` ..."""
        if len(self.days) == 7:
            return "*"
        positions = sorted(_CRON_ORDER.index(d) for d in self.days)
        parts: list[str] = []
        run = [positions[0]]
        for pos in positions[1:] + [None]:  # type: ignore[list-item]
            if pos is not None and pos == run[-1] + 1:
                run.append(pos)
                continue
            names = [DAYS[_CRON_ORDER[p]].upper() for p in run]
            parts.append(f"{names[0]}-{names[-1]}" if len(run) >= 3 else ",".join(names))
            if pos is not None:
                run = [pos]
        return ",".join(parts)

    @property
    def cron(self) -> str:
        """Application Auto Scaling cron: ``cron(minutes hours day-of-month month day-of-week year)``."""
        return f"cron({self.minute} {self.hour} ? * {self.day_expression} *)"

    @property
    def key(self) -> str:
        """Stable, readable identifier, e.g. ``raise_mon_fri_0845``."""
        days = "daily" if len(self.days) == 7 else self.day_expression.lower().replace("-", "_").replace(",", "_")
        return f"{self.kind}_{days}_{self.hour:02d}{self.minute:02d}"

    def describe(self) -> str:
        return f"{self.day_expression:<12} {self.hour:02d}:{self.minute:02d}  {self.kind} minimum to {self.min_capacity}"


# ----------------------------------------------------------------------------------------
# Profiles
# ----------------------------------------------------------------------------------------


def empty_profile() -> list[int]:
    return [0] * HOURS_PER_WEEK


def profile_from_peaks(peaks: Iterable[tuple[Sequence[int], Sequence[int], int]]) -> Profile:
    """Profile from ``(days, hours, concurrency)`` entries; overlapping entries keep the highest."""
    profile = empty_profile()
    for days, hours, concurrency in peaks:
        for day in days:
            for hour in hours:
                slot = day * 24 + hour
                profile[slot] = max(profile[slot], concurrency)
    return tuple(profile)


def profile_from_csv(text: str, tz: str) -> Profile:
    """Profile from a CSV of observed hourly peaks; each (day, hour) keeps its highest value.

    Two layouts, chosen by the header:

    - ``day,hour,concurrency``: ``day`` is mon..sun, ``hour`` 0-23, local time;
    - ``timestamp,concurrency``: ISO 8601 timestamps (e.g. a CloudWatch export of Lambda
      ``ConcurrentExecutions``, statistic Maximum, period 1 hour); a timestamp without an
      offset is UTC. Each is converted to ``tz`` before it is placed in the week.
    """
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    if {"day", "hour", "concurrency"} <= set(fields):
        layout = "day"
    elif {"timestamp", "concurrency"} <= set(fields):
        layout = "timestamp"
    else:
        raise ProfileError(f"header must be 'day,hour,concurrency' or 'timestamp,concurrency' (given {','.join(fields) or 'none'!r})")
    zone = ZoneInfo(tz)
    profile = empty_profile()
    rows = 0
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values()):
            continue
        concurrency = _csv_int(row, "concurrency", line, 0, 1_000_000)
        if layout == "day":
            day_name = (row.get("day") or "").strip().lower()[:3]
            if day_name not in DAYS:
                raise ProfileError(f"line {line}: day must be one of {', '.join(DAYS)} (given {row.get('day')!r})")
            slot = DAYS.index(day_name) * 24 + _csv_int(row, "hour", line, 0, 23)
        else:
            raw = (row.get("timestamp") or "").strip()
            try:
                stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise ProfileError(f"line {line}: timestamp must be ISO 8601, e.g. 2024-05-06T09:00:00Z (given {raw!r})") from None
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=timezone.utc)
            local = stamp.astimezone(zone)
            slot = local.weekday() * 24 + local.hour
        profile[slot] = max(profile[slot], concurrency)
        rows += 1
    if not rows:
        raise ProfileError("no data rows")
    return tuple(profile)


def _csv_int(row: dict[str, str], column: str, line: int, low: int, high: int) -> int:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise ProfileError(f"line {line}: {column} must be a number (given {raw!r})") from None
    if not value.is_integer() and column == "hour":
        raise ProfileError(f"line {line}: hour must be a whole number 0-23 (given {raw!r})")
    number = int(-(-value // 1))  # observed peaks round up: 12.2 concurrent executions need 13
    if not low <= number <= high:
        raise ProfileError(f"line {line}: {column} must be {low}-{high} (given {raw!r})")
    return number


# ----------------------------------------------------------------------------------------
# Windows and schedule
# ----------------------------------------------------------------------------------------


def peak_windows(profile: Sequence[int], baseline: int, *, lead_minutes: int, merge_gap_hours: int) -> list[Window]:
    """Merged windows of hours above ``baseline``, in week order (see the module docstring)."""
    if len(profile) != HOURS_PER_WEEK:
        raise ProfileError(f"a weekly profile has {HOURS_PER_WEEK} hours (given {len(profile)})")
    peak = [value > baseline for value in profile]
    if not any(peak):
        return []
    if all(peak):
        raise ProfileError(f"every hour of the week is above the baseline minimum {baseline}; "
                           f"raise the minimum to {max(profile)} instead of scheduling it")
    # Start scanning right after an off-peak hour, so no run is split by the week boundary.
    origin = (peak.index(False) + 1) % HOURS_PER_WEEK
    windows: list[Window] = []
    for offset in range(HOURS_PER_WEEK):
        slot = (origin + offset) % HOURS_PER_WEEK
        if not peak[slot]:
            continue
        if windows and (windows[-1].start + windows[-1].hours) % HOURS_PER_WEEK == slot:
            last = windows[-1]
            windows[-1] = Window(last.start, last.hours + 1, max(last.level, profile[slot]))
        else:
            windows.append(Window(slot, 1, profile[slot]))

    def close(gap_hours: int) -> bool:
        return gap_hours <= merge_gap_hours or gap_hours * 60 <= lead_minutes

    merged = True
    while merged and len(windows) > 1:
        merged = False
        for i, window in enumerate(windows):
            following = windows[(i + 1) % len(windows)]
            gap = (following.start - window.end) % HOURS_PER_WEEK
            if close(gap):
                combined = Window(window.start, window.hours + gap + following.hours, max(window.level, following.level))
                if i + 1 < len(windows):
                    windows[i:i + 2] = [combined]
                else:  # the last window wraps into the first
                    windows = [combined] + windows[1:-1]
                merged = True
                break
    if len(windows) == 1 and close(HOURS_PER_WEEK - windows[0].hours):
        raise ProfileError(f"the merged peak windows cover the whole week; raise the minimum to "
                           f"{windows[0].level} instead of scheduling it (or lower merge_gap_hours)")
    return sorted(windows, key=lambda w: w.start)


def derive_schedule(profile: Sequence[int], baseline: int, *, lead_minutes: int = 15,
                    merge_gap_hours: int = 1) -> list[ScheduledChange]:
    """Scheduled raises and lowers of the minimum for ``profile`` (see the module docstring)."""
    if lead_minutes < 0 or lead_minutes >= 24 * 60:
        raise ProfileError(f"lead_minutes must be 0-1439 (given {lead_minutes})")
    windows = peak_windows(profile, baseline, lead_minutes=lead_minutes, merge_gap_hours=merge_gap_hours)
    events: list[tuple[str, int, int]] = []  # (kind, minute of week, capacity)
    for window in windows:
        events.append(("raise", (window.start * 60 - lead_minutes) % MINUTES_PER_WEEK, window.level))
        events.append(("lower", window.end * 60, baseline))
    grouped: dict[tuple[str, int, int], list[int]] = {}
    for kind, minute_of_week, capacity in events:
        day, minute_of_day = divmod(minute_of_week, 24 * 60)
        grouped.setdefault((kind, minute_of_day, capacity), []).append(day)
    changes = [ScheduledChange(kind, tuple(sorted(days)), minute_of_day // 60, minute_of_day % 60, capacity)
               for (kind, minute_of_day, capacity), days in grouped.items()]
    return sorted(changes, key=lambda c: (c.days[0], c.hour, c.minute, c.kind))


def render_table(changes: Sequence[ScheduledChange], tz: str) -> str:
    """The schedule as a Markdown table (used in the documentation)."""
    lines = [f"| days | time ({tz}) | action | cron |", "|---|---|---|---|"]
    for change in changes:
        lines.append(f"| {change.day_expression} | {change.hour:02d}:{change.minute:02d} | "
                     f"{change.kind} minimum to {change.min_capacity} | `{change.cron}` |")
    return "\n".join(lines)
