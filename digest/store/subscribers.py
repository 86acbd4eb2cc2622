"""Subscribers and their named profiles, one at a time (many at once: `store.upserts`).
Part of the store (the only SQL in the project)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from digest.codec import keywords_from_json, keywords_to_json
from digest.model import Profile, Subscriber
from digest.store.base import IN_CHUNK, Connection, StoreBase, iso, rows_in
from digest.store.next_send import refresh_next_send

SUB_COLUMNS = (
    "id, email, status, timezone, send_at, frequency, notify_empty, created_at, confirmed_at,"
    " unsubscribed_at, paused_at"
)
PROFILE_UPSERT = (
    "INSERT INTO subscriber_profiles"
    " (subscriber_id, name, keywords, exclude, max_items, min_score) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT (subscriber_id, name) DO UPDATE SET keywords = excluded.keywords,"
    " exclude = excluded.exclude, max_items = excluded.max_items, min_score = excluded.min_score"
)


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
                db.execute(PROFILE_UPSERT, profile_values(sid, profile))
            refresh_next_send(db, [sid], now)
        found = self.subscriber(sid)
        assert found is not None
        return found, created

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
        rows = self._db.execute(f"SELECT {SUB_COLUMNS} FROM subscribers {where}", args).fetchall()
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
        return [subscriber_from_row(r, tuple(profiles.get(r["id"], ()))) for r in rows]


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


def profile_values(sid: int, profile: Profile) -> tuple[Any, ...]:
    """A profile's row of subscriber_profiles, in `PROFILE_UPSERT`'s order."""
    return (
        sid,
        profile.name,
        keywords_to_json(profile.keywords),
        keywords_to_json(profile.exclude),
        profile.max_items,
        profile.min_score,
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


def subscriber_from_row(row: Mapping[str, Any], profiles: tuple[Profile, ...]) -> Subscriber:
    """A stored subscriber row and its profiles as a `Subscriber`."""
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
