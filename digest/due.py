"""When a reader's digest falls due: the one rule, for the planner and for the store.

The planner (`plan.due_readers`) asks "is this reader due now?" of every reader it reads;
the store keeps each reader's answer to "from when on may they be due?" in an indexed
column (`subscribers.next_send_at`), so that a sweep over a big list reads only the
readers whose time has come instead of every one. Both are made of the pieces below:

    local_day(timezone, send_at, now) -> (their local date, has their send time passed)
    next_send_at(timezone, send_at, frequency, last_day, since) -> the first due instant

A reader is due on a local day when their send time has passed on it and the day is
after their last digest's (at least a week after it, for weekly readers); a reader who
never had a digest is due once their send time has passed. `next_send_at` is never
later than the first instant after the write that computed it at which
`plan.due_readers` says "due"; it may be earlier (a stored time is a lower bound: a
reader whose days went by without a digest is due again only from their send time
today), and then the planner, which decides, finds them not due yet and the store
moves them on (`Store.advance_next_send`): read once more, never mailed early.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: How far back a first digest looks, by frequency.
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
#: Days from one digest to the next, by frequency.
GAP_DAYS = {"daily": 1, "weekly": 7}


def local_day(timezone: str, send_at: str, now: datetime) -> tuple[date, bool]:
    """The reader's local date at `now`, and whether their send time has passed.

    Raises ZoneInfoNotFoundError for a zone this machine does not know, ValueError for
    a send time that is no "HH:MM".
    """
    local = _local_now(timezone, now)
    return local.date(), local.time() >= send_time(send_at)


@functools.lru_cache(maxsize=1024)  # a run asks for the same few zones and times
def _local_now(timezone: str, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(timezone))


@functools.lru_cache(maxsize=2048)
def send_time(send_at: str) -> time:
    """A send time ("HH:MM") as a time; ValueError when it is not one."""
    hour, minute = (int(x) for x in send_at.split(":"))
    return time(hour, minute)


def next_send_at(
    timezone: str, send_at: str, frequency: str, last_day: date | None, since: datetime
) -> datetime:
    """The first instant (UTC) from `since` on at which a reader with these settings can
    be due: their send time on the day after their last digest's date (a week after, for
    weekly readers), or on their local day at `since` if that is later (always, when
    they have no digest yet). At or before `since` means due at `since`.

    A send time that a change of clocks skips that day (02:30 when 02:00 jumps to 03:00)
    counts from the earlier of its two readings, so the instant is never late. Raises as
    `local_day` for a row it cannot read.
    """
    zone = ZoneInfo(timezone)
    at = send_time(send_at)
    day = since.astimezone(zone).date()
    if last_day is not None:
        day = max(day, last_day + timedelta(days=GAP_DAYS.get(frequency, 1)))
    return min(
        datetime.combine(day, at, zone).replace(fold=fold).astimezone(UTC) for fold in (0, 1)
    )
