"""Load traces: how many jobs or requests arrive in each minute.

A trace file is a CSV with the header ``timestamp,arrivals`` (other columns are ignored) and
one row per minute:

- ``timestamp``: ISO 8601 (``2024-05-06T09:00:00Z``, an offset, or no offset = UTC), the
  start of the minute; each row 60 s after the previous one. A gap of whole minutes is
  allowed and read as minutes with 0 arrivals (the count is reported), because CloudWatch
  exports leave out periods without data;
- ``arrivals``: jobs or requests arriving in that minute, a number >= 0 (fractions are
  fine: the models are fluid).

Errors name the file, the line and the column, and quote the value.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

STEP = timedelta(seconds=60)
COLUMNS = ("timestamp", "arrivals")


class TraceError(ValueError):
    """A trace file that cannot be read; the message names file, line and column."""


@dataclass(frozen=True)
class Trace:
    name: str
    start: datetime  # timezone-aware, start of the first minute
    arrivals: tuple[float, ...]
    filled_minutes: int = 0  # missing minutes read as 0 arrivals
    scale: float = 1.0  # factor already applied to ``arrivals``

    @property
    def minutes(self) -> int:
        return len(self.arrivals)

    def time(self, minute: int) -> datetime:
        return self.start + minute * STEP

    def scaled(self, factor: float) -> "Trace":
        if factor == 1.0:
            return self
        return replace(self, arrivals=tuple(a * factor for a in self.arrivals), scale=self.scale * factor)


def parse_timestamp(raw: str) -> datetime:
    """ISO 8601 with ``Z``, an offset, or none (= UTC); raises ValueError."""
    stamp = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def format_timestamp(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_trace(text: str, name: str, source: str | None = None) -> Trace:
    """Parse CSV text; ``source`` (the file name) prefixes every error."""
    where = source or name
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lower() for cell in row]
            break
    if header is None:
        raise TraceError(f"{where}: empty file; expected the header 'timestamp,arrivals' and one row per minute")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise TraceError(f"{where}, line {reader.line_num}: header must name the columns timestamp,arrivals "
                         f"(missing {', '.join(missing)}; given {','.join(header)!r})")
    at = {column: header.index(column) for column in COLUMNS}

    start: datetime | None = None
    previous: datetime | None = None
    arrivals: list[float] = []
    filled = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        cells = {column: (row[i].strip() if i < len(row) else "") for column, i in at.items()}
        try:
            stamp = parse_timestamp(cells["timestamp"])
        except ValueError:
            raise TraceError(f"{where}, line {line}, column timestamp: must be an ISO 8601 time such as "
                             f"2024-05-06T09:00:00Z (given {cells['timestamp']!r})") from None
        value = _arrivals(cells["arrivals"], where, line)
        if previous is not None:
            step = stamp - previous
            if step <= timedelta(0) or step % STEP:
                raise TraceError(f"{where}, line {line}, column timestamp: must be {format_timestamp(previous + STEP)} "
                                 f"(60 s after the previous row) or a whole number of minutes later "
                                 f"(given {cells['timestamp']!r})")
            gap = step // STEP - 1
            arrivals.extend([0.0] * gap)
            filled += gap
        else:
            start = stamp
        arrivals.append(value)
        previous = stamp
    if start is None:
        raise TraceError(f"{where}: no data rows after the header; expected one row per minute")
    return Trace(name=name, start=start, arrivals=tuple(arrivals), filled_minutes=filled)


def _arrivals(raw: str, where: str, line: int) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}, line {line}, column arrivals: must be a number >= 0 (given {raw!r})")
    return value


def read_trace(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError(f"{path}: trace file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read the trace file ({exc})") from None
    return parse_trace(text, path.stem, str(path))


def render_trace(start: datetime, arrivals: Sequence[float]) -> str:
    """CSV text of a trace (integers written without a decimal point)."""
    lines = ["timestamp,arrivals"]
    for minute, value in enumerate(arrivals):
        shown = str(int(value)) if float(value).is_integer() else f"{value:g}"
        lines.append(f"{format_timestamp(start + minute * STEP)},{shown}")
    return "\n".join(lines) + "\n"
