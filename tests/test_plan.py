"""The pure planner: who is due, and what each digest holds, from plain data only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from digest.model import LastDigest, Subscriber
from digest.plan import Due, Ledgers, due_readers, plan_digests
from digest.rank import RankSettings, make_profile

from .factories import make_paper

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
TODAY = NOW.date()
LORA = make_profile("lora", "LoRA", min_score=0.0)
SETTINGS = RankSettings()


def reader(sid: int, **fields: object) -> Subscriber:
    base = Subscriber(
        id=sid,
        email=f"r{sid}@example.org",
        status="confirmed",
        timezone="UTC",
        send_at="07:00",
        frequency="daily",
        notify_empty=False,
        created_at=NOW - timedelta(days=30),
        profiles=(LORA,),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


FIRST = {"daily": 40, "weekly": 7}


def test_who_is_due_and_where_their_window_starts() -> None:
    readers = [
        reader(1),  # a first digest: from the row that had arrived a day ago
        reader(2),  # had one yesterday: from the row it ended at
        reader(3, send_at="10:00"),  # not yet (09:00 UTC)
        reader(4),  # already has today's
        reader(5, status="pending"),
        reader(6, profiles=()),
        reader(7, frequency="weekly"),  # last one 3 days ago: not again before 7 days
        reader(8, frequency="weekly"),  # a first weekly digest: a week back
        reader(9, timezone="Asia/Tokyo", send_at="18:00"),  # 18:00 in Tokyo: due, day ahead
    ]
    last = {
        2: LastDigest(2, TODAY - timedelta(days=1), NOW - timedelta(days=1), 55),
        7: LastDigest(7, TODAY - timedelta(days=3), NOW - timedelta(days=3), 20),
    }
    due = due_readers(readers, last, {(4, TODAY)}, NOW, FIRST)
    assert [(d.subscriber.id, d.day, d.after_row) for d in due] == [
        (1, TODAY, 40),
        (2, TODAY, 55),
        (8, TODAY, 7),
        (9, TODAY, 40),
    ]
    forced = due_readers([reader(3)], {}, set(), NOW, FIRST, digest_date=date(2026, 11, 30))
    assert [(d.subscriber.id, d.day) for d in forced] == [(3, date(2026, 11, 30))]


def arrivals(n: int, first_row: int = 10) -> list[tuple[int, object]]:
    return [
        (first_row + i, make_paper(f"LoRA adapters, part {i}", "We study LoRA.", id=f"p{i}"))
        for i in range(n)
    ]


def due(sid: int, after_row: int, **fields: object) -> Due:
    return Due(reader(sid, **fields), TODAY, after_row, NOW - timedelta(days=1))


def test_readers_with_different_windows_share_one_index_and_get_their_own_papers() -> None:
    papers = arrivals(6)  # rows 10..15
    planned, empty = plan_digests(
        [due(1, 0), due(2, 12), due(3, 15), due(4, 0)],
        papers,  # type: ignore[arg-type]
        {4: {"p0", "p1", "p2"}},  # reader 4 was sent these before
        NOW,
        settings=SETTINGS,
        synonyms=None,
        title="papers-digest",
    )
    ids = {p.due.subscriber.id: set(p.paper_ids) for p in planned}
    assert ids[1] == {f"p{i}" for i in range(6)}
    assert ids[2] == {"p3", "p4", "p5"}  # rows 13..15: after row 12
    assert ids[4] == {"p3", "p4", "p5"}  # never a paper twice
    assert 3 not in ids and empty == 1  # nothing arrived after row 15
    considered = {p.due.subscriber.id: p.digest.papers_considered for p in planned}
    assert considered == {1: 6, 2: 3, 4: 6}


def test_a_paper_shows_in_one_section_and_an_empty_digest_only_when_asked() -> None:
    two = (LORA, make_profile("adapters", "adapters", min_score=0.0))
    planned, empty = plan_digests(
        [due(1, 0, profiles=two), due(2, 99, notify_empty=True)],
        arrivals(3),  # type: ignore[arg-type]
        {},
        NOW,
        settings=SETTINGS,
        synonyms=None,
        title="papers-digest",
        notes=("A source failed: x",),
    )
    both, nothing = planned
    first, second = both.digest.sections
    assert len(first.items) == 3 and second.items == ()  # the same papers match both
    assert nothing.digest.item_count == 0 and nothing.digest.notes == ("A source failed: x",)
    assert empty == 0


def test_ledgers_read_like_a_set_of_papers_per_reader() -> None:
    """`Ledgers` keeps (reader, position) pairs as arrays and answers as {reader: ids}."""
    ids = ["p0", "p1", "p2", "p3"]
    ledgers = Ledgers([7, 3, 7, 9, 3], [0, 1, 2, 3, 1], ids)
    assert dict(ledgers) == {3: {"p1"}, 7: {"p0", "p2"}, 9: {"p3"}}
    assert ledgers.get(5, ()) == () and len(ledgers) == 3
    assert dict(Ledgers([], [], ids)) == {}
