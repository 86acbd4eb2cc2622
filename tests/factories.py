"""Test data built in one place: papers, outgoing emails, subscribers.

    make_paper("LoRA for Speech", "We adapt speech models.", upvotes=3)
    make_email(2, subject="Hello")          # delivery d-0002 to reader2@example.org
    confirmed_subscriber(config, store, "ada@example.org", PEFT)

Each takes the fields a test cares about and fills the rest with realistic values, so a
change to a model's fields is made here once, not in every test file.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from digest.config import Config
from digest.deliver import OutgoingEmail
from digest.model import Paper, Profile, Subscriber
from digest.rank import make_profile
from digest.store import Store
from digest.subscriptions import subscribe
from digest.text import title_id

#: When a made paper was first (and last) seen: the day of the Oct 16 seed capture.
SEEN = datetime(2025, 10, 16, tzinfo=UTC)
#: The date header of a made email.
WHEN = datetime(2024, 10, 16, 7, 30, tzinfo=UTC)
UNSUBSCRIBE = "https://digest.example.org/unsubscribe?token=" + "Ab0_-" * 30
MAILTO = "mailto:unsubscribe@digest.example.org?subject=unsubscribe"
PEFT = make_profile("peft", ("LoRA", "parameter-efficient fine-tuning", "adapters"))


def make_paper(
    title: str = "Met$^2$Net: Forecasting",
    abstract: str = "An abstract.",
    *,
    id: str | None = None,
    seen: datetime | None = SEEN,
    sources: tuple[str, ...] = ("test",),
    **fields: Any,
) -> Paper:
    """A paper as the store hands it back: the id from the title (`text.title_id`) unless
    given, first_seen = last_seen = `seen` (None for a parser-fresh record)."""
    return Paper(
        id=title_id(title) if id is None else id,
        title=title,
        abstract=abstract,
        sources=sources,
        first_seen=seen,
        last_seen=seen,
        **fields,
    )


def linked_paper(title: str, abstract: str, arxiv_id: str, **fields: Any) -> Paper:
    """A paper with every kind of link a source gives (its Hugging Face page, arXiv, a PDF,
    code, a `javascript:` project page that must never become a link), four author names
    and a summary; `fields` change or add to them."""
    known: dict[str, Any] = {
        "url": f"https://huggingface.co/papers/{arxiv_id}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv_id}",
        "code_url": "https://github.com/o/r",
        "project_url": "javascript:alert(1)",
        "authors": ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
        "summary": "A small model.",
    }
    return make_paper(title, abstract, arxiv_id=arxiv_id, **{**known, **fields})


def make_email(n: int = 1, **changes: Any) -> OutgoingEmail:
    """A realistic email for delivery `d-000n` to `reader<n>@example.org`."""
    email = OutgoingEmail(
        delivery_id=f"d-{n:04d}",
        to=f"reader{n}@example.org",
        from_addr="papers-digest <digest@digest.example.org>",
        subject=f"Your papers for Oct 16 ({n})",
        text=f"Hello reader {n}\n\n1. A paper about diffusion\n",
        html=f"<html><body><p>Hello reader {n}</p><ol><li>A paper</li></ol></body></html>",
        message_id=f"<d-{n:04d}@digest.example.org>",
        date=WHEN,
        unsubscribe_url=UNSUBSCRIBE,
        unsubscribe_mailto=MAILTO,
    )
    return dataclasses.replace(email, **changes)


def confirmed_subscriber(
    config: Config,
    store: Store,
    address: str = "ada@example.org",
    spec: Profile | None = PEFT,
    *,
    now: datetime = SEEN,
    **options: Any,
) -> Subscriber:
    """A subscriber who skipped double opt-in (`subscribe(..., confirmed=True)`); `options`
    are subscribe's (timezone, send_at, frequency, notify_empty). Like `subscribe`, it
    needs DIGEST_SECRET in the environment."""
    return subscribe(config, store, address, spec, now, confirmed=True, **options).subscriber
