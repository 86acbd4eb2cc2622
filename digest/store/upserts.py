"""Many subscribers at once: `upsert_subscribers`, the bulk form of `upsert_subscriber`
(`digest subscribers import`), a page of addresses a transaction with one executemany a
table. Part of the store (the only SQL in the project)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from digest.codec import keywords_from_json
from digest.model import Profile, Subscriber
from digest.store.base import Connection, iso
from digest.store.next_send import refresh_next_send
from digest.store.subscribers import (
    PROFILE_UPSERT,
    SUB_COLUMNS,
    SubscribersMixin,
    profile_values,
    subscriber_from_row,
)

#: Addresses per transaction of `upsert_subscribers`: one executemany per table each.
UPSERT_PAGE = 5000


class SubscriberRow(Protocol):
    """One row of a bulk upsert: an address, one profile, the settings it gives (None:
    not given). `bulk.ImportRow` is one."""

    @property
    def email(self) -> str: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def send_at(self) -> str | None: ...
    @property
    def frequency(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What (one page of) `upsert_subscribers` did, counted in addresses."""

    new: int = 0  #: subscribers created
    changed: int = 0  #: known subscribers whose settings, status or a profile changed
    unchanged: int = 0  #: known subscribers left exactly as they were (no write)
    #: Of `unchanged`: addresses that had unsubscribed, left so (`resubscribe=False`).
    kept_unsubscribed: int = 0
    #: The subscribers created, as stored (pending ones need a confirmation email).
    created: tuple[Subscriber, ...] = field(default=())

    @property
    def addresses(self) -> int:
        """Every address the page held."""
        return self.new + self.changed + self.unchanged

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.new + other.new,
            self.changed + other.changed,
            self.unchanged + other.unchanged,
            self.kept_unsubscribed + other.kept_unsubscribed,
            self.created + other.created,
        )


@dataclass(slots=True)
class _Wanted:
    """The rows for one address merged: the last value given of each setting and the last
    profile of each name win, as they would row by row."""

    email: str
    timezone: str | None = None
    send_at: str | None = None
    frequency: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)


class UpsertsMixin(SubscribersMixin):
    """`upsert_subscribers`: many addresses, their settings and profiles, at once."""

    def upsert_subscribers(
        self,
        rows: Iterable[SubscriberRow],
        now: datetime,
        *,
        confirmed: bool = False,
        resubscribe: bool = True,
    ) -> Iterator[UpsertCounts]:
        """`upsert_subscriber` for many rows, UPSERT_PAGE addresses per transaction.

        Ends in the same store as calling `upsert_subscriber(row.email, row.profile,
        timezone=..., send_at=..., frequency=..., now=now, confirmed=confirmed)` for each
        row in order: for one address the last value given of each setting wins, and the
        last row for each profile name. With `resubscribe=False` an address that has
        unsubscribed is left as it is (counted in `kept_unsubscribed`). A subscriber whose
        row and profiles would not change is not written at all.

        A generator: it yields each page's counts after the page is committed (so a
        caller can mail those readers before the next page), and writes nothing more
        unless it is iterated to the end.
        """
        wanted: dict[str, _Wanted] = {}
        for row in rows:
            want = wanted.get(row.email)
            if want is None:
                want = wanted[row.email] = _Wanted(row.email)
            want.timezone = row.timezone if row.timezone is not None else want.timezone
            want.send_at = row.send_at if row.send_at is not None else want.send_at
            want.frequency = row.frequency if row.frequency is not None else want.frequency
            want.profiles[row.profile.name] = row.profile
        merged = list(wanted.values())
        for start in range(0, len(merged), UPSERT_PAGE):
            page = merged[start : start + UPSERT_PAGE]
            with self._transaction("importing subscribers") as db:
                counts = self._upsert_page(db, page, iso(now), confirmed, resubscribe)
            yield counts

    def _upsert_page(
        self,
        db: Connection,
        page: list[_Wanted],
        now: str,
        confirmed: bool,
        resubscribe: bool,
    ) -> UpsertCounts:
        """One page of `upsert_subscribers`, inside its transaction."""
        emails, email_list = self._any_of([w.email for w in page])
        found = {
            r["email"]: r
            for r in db.execute(
                f"SELECT {SUB_COLUMNS} FROM subscribers WHERE email{emails}", (email_list,)
            )
        }
        ids, id_list = self._any_of([r["id"] for r in found.values()])
        stored = {
            (r["subscriber_id"], r["name"]): r
            for r in db.execute(
                f"SELECT * FROM subscriber_profiles WHERE subscriber_id{ids}", (id_list,)
            )
        }
        # Ids as SQLite would give them one insert at a time (max + 1): the write lock is
        # held, so nobody else inserts meanwhile.
        next_id = self._next_subscriber_id(db)
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        profile_rows: list[tuple[Any, ...]] = []
        created: list[Subscriber] = []
        changed = unchanged = kept = 0
        touched: list[int] = []  # readers whose next send time may move
        for want in page:
            row = found.get(want.email)
            if row is None:
                sid, next_id = next_id, next_id + 1
                values = _new_subscriber(sid, want, now, confirmed)
                inserts.append(values)
                profile_rows.extend(profile_values(sid, p) for p in want.profiles.values())
                created.append(
                    subscriber_from_row(
                        {**dict(zip(_INSERT_COLUMNS, values, strict=True)), "paused_at": None},
                        tuple(sorted(want.profiles.values(), key=lambda p: p.name)),
                    )
                )
                continue
            if row["status"] == "unsubscribed" and not resubscribe:
                kept += 1
                unchanged += 1
                continue
            sid = int(row["id"])
            update = _updated_subscriber(row, want, now, confirmed)
            dirty = update != tuple(row[c] for c in _UPDATE_COLUMNS)
            if dirty:
                updates.append((*update, sid))
            for profile in want.profiles.values():
                values = profile_values(sid, profile)
                if not _same_profile(stored.get((sid, profile.name)), values):
                    profile_rows.append(values)
                    dirty = True
            changed += dirty
            unchanged += not dirty
            if dirty:
                touched.append(sid)
        db.executemany(
            f"INSERT INTO subscribers ({', '.join(_INSERT_COLUMNS)})"
            f" VALUES ({','.join('?' * len(_INSERT_COLUMNS))})",
            inserts,
        )
        db.executemany(
            f"UPDATE subscribers SET {', '.join(f'{c} = ?' for c in _UPDATE_COLUMNS)} WHERE id = ?",
            updates,
        )
        db.executemany(PROFILE_UPSERT, profile_rows)
        refresh_next_send(db, [*(row[0] for row in inserts), *touched], datetime.fromisoformat(now))
        return UpsertCounts(len(inserts), changed, unchanged, kept, tuple(created))


_INSERT_COLUMNS = (
    "id",
    "email",
    "status",
    "timezone",
    "send_at",
    "frequency",
    "notify_empty",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)
_UPDATE_COLUMNS = ("status", "timezone", "send_at", "frequency", "confirmed_at", "unsubscribed_at")


def _new_subscriber(sid: int, want: _Wanted, now: str, confirmed: bool) -> tuple[Any, ...]:
    """The values of _INSERT_COLUMNS for a new address (as `upsert_subscriber` inserts)."""
    return (
        sid,
        want.email,
        "confirmed" if confirmed else "pending",
        want.timezone or "UTC",
        want.send_at or "07:00",
        want.frequency or "daily",
        0,
        now,
        now if confirmed else None,
        None,
    )


def _updated_subscriber(row: Any, want: _Wanted, now: str, confirmed: bool) -> tuple[Any, ...]:
    """The values of _UPDATE_COLUMNS for a known address (as `upsert_subscriber` sets)."""
    status = row["status"]
    if status == "unsubscribed":
        status = "confirmed" if confirmed else "pending"
    elif confirmed:
        status = "confirmed"
    return (
        status,
        row["timezone"] if want.timezone is None else want.timezone,
        row["send_at"] if want.send_at is None else want.send_at,
        row["frequency"] if want.frequency is None else want.frequency,
        (row["confirmed_at"] or now) if status == "confirmed" else None,
        None,
    )


def _same_profile(row: Any, values: tuple[Any, ...]) -> bool:
    """Whether the stored profile row holds `values` (keywords compared parsed, so a row
    an older version wrote in another JSON spelling still counts as the same)."""
    if row is None:
        return False
    _, _, keywords, exclude, max_items, min_score = values
    return (
        (row["max_items"], row["min_score"]) == (max_items, min_score)
        and (
            row["keywords"] == keywords
            or keywords_from_json(row["keywords"]) == keywords_from_json(keywords)
        )
        and (
            row["exclude"] == exclude
            or keywords_from_json(row["exclude"]) == keywords_from_json(exclude)
        )
    )
