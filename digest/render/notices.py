"""The short emails about a subscription (not digests): confirm it, or manage it.

The token stands on a line of its own in the text part: that line is short and has no
`=`, so even when the message goes out quoted-printable (the link's line is longer than
a mail line may be) the token reads the same in the .eml source and can be pasted into
`digest confirm TOKEN`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from markupsafe import escape

from digest.config import DeliveryConfig
from digest.deliver.message import OutgoingEmail
from digest.model import Subscriber


def message_domain(delivery: DeliveryConfig) -> str:
    """The domain of Message-IDs: the sender's (every message of this tool says so)."""
    return delivery.from_addr.rpartition("@")[2].rstrip(">").strip() or "localhost"


def _notice(
    delivery: DeliveryConfig,
    sub: Subscriber,
    kind: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
) -> OutgoingEmail:
    did = hashlib.sha256(f"{kind}:{sub.id}:{now.isoformat()}".encode()).hexdigest()[:24]
    return OutgoingEmail(
        delivery_id=did,
        to=sub.email,
        from_addr=delivery.from_addr,
        subject=subject,
        text=text,
        html=html,
        message_id=f"<{did}@{message_domain(delivery)}>",
        date=now,
        unsubscribe_url="",
        unsubscribe_mailto="",
    )


def confirmation_email(
    delivery: DeliveryConfig, sub: Subscriber, confirm_link: str, now: datetime
) -> OutgoingEmail:
    """The double opt-in message: one link, and its token for `digest confirm`."""
    token = confirm_link.rpartition("token=")[2]
    text = (
        f"Please confirm your papers-digest subscription for {sub.email}:\n\n{confirm_link}\n\n"
        "The link works for 7 days. If you did not ask for this, ignore this message.\n\n"
        "Or give this token to `digest confirm`:\n\n"
        f"{token}\n"
    )
    html = (
        f"<p>Please confirm your papers-digest subscription for {escape(sub.email)}:</p>"
        f'<p><a href="{escape(confirm_link)}">Confirm my subscription</a></p>'
        "<p>The link works for 7 days. If you did not ask for this, ignore this message.</p>"
    )
    subject = "Confirm your papers-digest subscription"
    return _notice(delivery, sub, "confirm", subject, text, html, now)


def manage_email(
    delivery: DeliveryConfig, sub: Subscriber, manage_link: str, now: datetime
) -> OutgoingEmail:
    """For an address that subscribes again while subscribed: its manage link, no change."""
    text = (
        f"Someone (you, we hope) asked to subscribe {sub.email} to the papers-digest, which "
        "it already gets.\n\nChange your keywords, time or frequency, or pause, here:\n\n"
        f"{manage_link}\n\nIf you did not ask for this, ignore this message: nothing changed.\n"
    )
    html = (
        f"<p>Someone (you, we hope) asked to subscribe {escape(sub.email)} to the "
        "papers-digest, which it already gets.</p>"
        f'<p><a href="{escape(manage_link)}">Manage your subscription</a>: keywords, time, '
        "frequency, pause.</p>"
        "<p>If you did not ask for this, ignore this message: nothing changed.</p>"
    )
    subject = "Your papers-digest subscription"
    return _notice(delivery, sub, "manage", subject, text, html, now)
