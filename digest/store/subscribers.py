"""Subscribers and their named profiles. Part of the store (the only SQL in the project)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from digest.codec import keywords_from_json, keywords_to_json
from digest.model import Profile, Subscriber
from digest.store.base import IN_CHUNK, Connection, StoreBase, iso, rows_in
from digest.store.next_send import refresh_next_send

_SUB_COLUMNS = (
    "id, email, status, timezone, send_at, frequency, notify_empty, created_at, confirmed_at,"
    " unsubscribed_at, paused_at"
)
#: Addresses per transaction of `upsert_subscribers`: one executemany per table each.
UPSERT_PAGE = 5000
_PROFILE_UPSERT = (
    "INSERT INTO subscriber_profiles"
    " (subscriber_id, name, keywords, exclude, max_items, min_score) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT (subscriber_id, name) DO UPDATE SET keywords = excluded.keywords,"
    " exclude = excluded.exclude, max_items = excluded.max_items, min_score = excluded.min_score"
)


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


class SubscribersMixin(StoreBase):
    """Subscriber rows; one per normalised address."""

    def upsert_subscriber(
        self,
        email: str,
        profile: Profile | None,
        *,
        now: datetime,
        timezone: str | None = None,
        send_at: str | None = None,
        frequency: str | None = None,
        notify_empty: bool | None = None,
        confirmed: bool = False,
    ) -> tuple[Subscriber, bool]:
        """Create the subscriber or update their settings, and add/replace one profile.

        Returns the subscriber and whether the row is new. An unsubscribed address that
        subscribes again starts over as pending (or confirmed with `confirmed`).
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, status FROM subscribers WHERE email = ?", (email,)
            ).fetchone()
            created = row is None
            if created:
                sid = self._next_subscriber_id(db)
                db.execute(
                    "INSERT INTO subscribers (id, email, status, timezone, send_at, frequency,"
                    " notify_empty, created_at, confirmed_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        sid,
                        email,
                        "confirmed" if confirmed else "pending",
                        timezone or "UTC",
                        send_at or "07:00",
                        frequency or "daily",
                        int(bool(notify_empty)),
                        iso(now),
                        iso(now) if confirmed else None,
                    ),
                )
            else:
                sid = int(row["id"])
                status = row["status"]
                if status == "unsubscribed":
                    status = "confirmed" if confirmed else "pending"
                elif confirmed:
                    status = "confirmed"
                db.execute(
                    "UPDATE subscribers SET status = ?, timezone = coalesce(?, timezone),"
                    " send_at = coalesce(?, send_at), frequency = coalesce(?, frequency),"
                    " notify_empty = coalesce(?, notify_empty),"
                    " confirmed_at = CASE WHEN ? = 'confirmed' THEN coalesce(confirmed_at, ?)"
                    " ELSE NULL END, unsubscribed_at = NULL WHERE id = ?",
                    (
                        status,
                        timezone,
                        send_at,
                        frequency,
                        None if notify_empty is None else int(notify_empty),
                        status,
                        iso(now),
                        sid,
                    ),
                )
            if profile is not None:
                db.execute(_PROFILE_UPSERT, _profile_values(sid, profile))
            refresh_next_send(db, [sid], now)
        found = self.subscriber(sid)
        assert found is not None
        return found, created

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
                f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE email{emails}", (email_list,)
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
                profile_rows.extend(_profile_values(sid, p) for p in want.profiles.values())
                created.append(
                    _subscriber(
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
                values = _profile_values(sid, profile)
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
        db.executemany(_PROFILE_UPSERT, profile_rows)
        refresh_next_send(db, [*(row[0] for row in inserts), *touched], datetime.fromisoformat(now))
        return UpsertCounts(len(inserts), changed, unchanged, kept, tuple(created))

    def _next_subscriber_id(self, db: Connection) -> int:
        """The id the next new subscriber gets (max + 1, as SQLite gives a row), with the
        other writers of subscribers held off until this transaction ends."""
        self._serialize(db, "subscribers")
        return int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM subscribers").fetchone()[0])

    def set_subscriber_status(self, subscriber_id: int, status: str, now: datetime) -> bool:
        """Confirm or unsubscribe; returns False when nothing changed (idempotent)."""
        column = {"confirmed": "confirmed_at", "unsubscribed": "unsubscribed_at"}[status]
        paused = ", paused_at = NULL" if status == "unsubscribed" else ""  # a new start
        with self._transaction() as db:
            cur = db.execute(
                f"UPDATE subscribers SET status = ?, {column} = ?{paused}"
                " WHERE id = ? AND status != ?",
                (status, iso(now), subscriber_id, status),
            )
            refresh_next_send(db, [subscriber_id], now)
            return cur.rowcount > 0

    def remove_profile(self, subscriber_id: int, name: str) -> bool:
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM subscriber_profiles WHERE subscriber_id = ? AND name = ?",
                (subscriber_id, name),
            )
            refresh_next_send(db, [subscriber_id], None)
            return cur.rowcount > 0

    def subscriber(self, subscriber_id: int) -> Subscriber | None:
        rows = self._subscribers("WHERE id = ?", (subscriber_id,))
        return rows[0] if rows else None

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        rows = self._subscribers("WHERE email = ?", (email,))
        return rows[0] if rows else None

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        """All subscribers (or those with `status`, "paused" too), by address."""
        if status:
            return self._subscribers(f"WHERE {_status_is(status)} ORDER BY email", (status,))
        return self._subscribers("ORDER BY email", ())

    def subscriber_page(
        self, *, after_id: int = 0, limit: int = 1000, status: str | None = None
    ) -> list[Subscriber]:
        """At most `limit` subscribers (with `status`) whose id is above `after_id`, by id:
        a long list read a page at a time (`after_id` = the last id of the page before)."""
        where = "WHERE id > ?" + (f" AND {_status_is(status)}" if status else "")
        args = (after_id, status) if status else (after_id,)
        return self._subscribers(f"{where} ORDER BY id LIMIT ?", (*args, limit))

    def subscribers_by_id(self, ids: Sequence[int]) -> dict[int, Subscriber]:
        """The subscribers with these ids (those that exist), by id."""
        out: dict[int, Subscriber] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), IN_CHUNK):  # a page of readers, with profiles
            chunk = tuple(wanted[start : start + IN_CHUNK])
            where = f"WHERE id IN ({','.join('?' * len(chunk))})"
            out.update((s.id, s) for s in self._subscribers(where, chunk))
        return out

    def _subscribers(self, where: str, args: tuple[object, ...]) -> list[Subscriber]:
        rows = self._db.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers {where}", args).fetchall()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        profiles: dict[int, list[Profile]] = {}
        sql = "SELECT * FROM subscriber_profiles"
        if len(ids) > _WHOLE:  # most of the list: one pass over every profile
            found: Iterable[Any] = self._db.execute(f"{sql} ORDER BY name")
        else:  # a page: only its profiles
            found = rows_in(
                self._db, f"{sql} WHERE subscriber_id IN ({{marks}}) ORDER BY name", ids
            )
        for p in found:
            profiles.setdefault(p["subscriber_id"], []).append(_profile(p))
        return [_subscriber(r, tuple(profiles.get(r["id"], ()))) for r in rows]


def _status_is(status: str) -> str:
    """SQL for "has `status`" (one `?` for it): a paused reader is a confirmed row with
    paused_at set, reported as "paused" and not as "confirmed"."""
    if status == "paused":
        return "(status = 'confirmed' AND paused_at IS NOT NULL AND ? = 'paused')"
    if status == "confirmed":
        return "(status = ? AND paused_at IS NULL)"
    return "status = ?"


#: Subscribers past which reading every profile beats asking for theirs.
_WHOLE = 20_000


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


def _profile_values(sid: int, profile: Profile) -> tuple[Any, ...]:
    return (
        sid,
        profile.name,
        keywords_to_json(profile.keywords),
        keywords_to_json(profile.exclude),
        profile.max_items,
        profile.min_score,
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


def _profile(row: Any) -> Profile:
    return Profile(
        name=row["name"],
        keywords=keywords_from_json(row["keywords"]),
        exclude=keywords_from_json(row["exclude"]),
        max_items=row["max_items"],
        min_score=row["min_score"],
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _subscriber(row: Mapping[str, Any], profiles: tuple[Profile, ...]) -> Subscriber:
    paused = row["paused_at"] and row["status"] == "confirmed"
    return Subscriber(
        id=row["id"],
        email=row["email"],
        status="paused" if paused else row["status"],
        timezone=row["timezone"],
        send_at=row["send_at"],
        frequency=row["frequency"],
        notify_empty=bool(row["notify_empty"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        confirmed_at=_time(row["confirmed_at"]),
        unsubscribed_at=_time(row["unsubscribed_at"]),
        profiles=profiles,
    )
