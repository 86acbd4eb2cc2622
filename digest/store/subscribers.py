"""Subscribers and their named profiles. Part of the store (the only SQL in the project)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from digest.codec import keywords_from_json, keywords_to_json
from digest.model import Profile, Subscriber
from digest.store.base import StoreBase, iso

_SUB_COLUMNS = (
    "id, email, status, timezone, send_at, frequency, notify_empty, created_at, confirmed_at,"
    " unsubscribed_at"
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
                cur = db.execute(
                    "INSERT INTO subscribers (email, status, timezone, send_at, frequency,"
                    " notify_empty, created_at, confirmed_at) VALUES (?,?,?,?,?,?,?,?)",
                    (
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
                sid = int(cur.lastrowid or 0)
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
                db.execute(
                    "INSERT OR REPLACE INTO subscriber_profiles"
                    " (subscriber_id, name, keywords, exclude, max_items, min_score)"
                    " VALUES (?,?,?,?,?,?)",
                    (
                        sid,
                        profile.name,
                        keywords_to_json(profile.keywords),
                        keywords_to_json(profile.exclude),
                        profile.max_items,
                        profile.min_score,
                    ),
                )
        found = self.subscriber(sid)
        assert found is not None
        return found, created

    def set_subscriber_status(self, subscriber_id: int, status: str, now: datetime) -> bool:
        """Confirm or unsubscribe; returns False when nothing changed (idempotent)."""
        column = {"confirmed": "confirmed_at", "unsubscribed": "unsubscribed_at"}[status]
        with self._transaction() as db:
            cur = db.execute(
                f"UPDATE subscribers SET status = ?, {column} = ? WHERE id = ? AND status != ?",
                (status, iso(now), subscriber_id, status),
            )
            return cur.rowcount > 0

    def remove_profile(self, subscriber_id: int, name: str) -> bool:
        with self._transaction() as db:
            cur = db.execute(
                "DELETE FROM subscriber_profiles WHERE subscriber_id = ? AND name = ?",
                (subscriber_id, name),
            )
            return cur.rowcount > 0

    def subscriber(self, subscriber_id: int) -> Subscriber | None:
        rows = self._subscribers("WHERE id = ?", (subscriber_id,))
        return rows[0] if rows else None

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        rows = self._subscribers("WHERE email = ?", (email,))
        return rows[0] if rows else None

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        """All subscribers (or those with `status`), by address."""
        if status:
            return self._subscribers("WHERE status = ? ORDER BY email", (status,))
        return self._subscribers("ORDER BY email", ())

    def _subscribers(self, where: str, args: tuple[object, ...]) -> list[Subscriber]:
        rows = self._db.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers {where}", args).fetchall()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids)) if len(ids) < 900 else None
        profiles: dict[int, list[Profile]] = {}
        sql = "SELECT * FROM subscriber_profiles"
        query = (
            (f"{sql} WHERE subscriber_id IN ({marks}) ORDER BY name", ids)
            if marks
            else (f"{sql} ORDER BY name", [])
        )
        for p in self._db.execute(*query):
            profiles.setdefault(p["subscriber_id"], []).append(_profile(p))
        return [_subscriber(r, tuple(profiles.get(r["id"], ()))) for r in rows]


def _profile(row: sqlite3.Row) -> Profile:
    return Profile(
        name=row["name"],
        keywords=keywords_from_json(row["keywords"]),
        exclude=keywords_from_json(row["exclude"]),
        max_items=row["max_items"],
        min_score=row["min_score"],
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _subscriber(row: sqlite3.Row, profiles: tuple[Profile, ...]) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        status=row["status"],
        timezone=row["timezone"],
        send_at=row["send_at"],
        frequency=row["frequency"],
        notify_empty=bool(row["notify_empty"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        confirmed_at=_time(row["confirmed_at"]),
        unsubscribed_at=_time(row["unsubscribed_at"]),
        profiles=profiles,
    )
