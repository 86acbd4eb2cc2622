"""One message's SMTP transaction (MAIL, RCPT, DATA) on an open connection, as smtplib's
`sendmail` would do it, for the bytes `deliver.wire` writes: pipelined where the server
offers it, no second parse of the addresses, no scan of the body for dots to stuff.
`deliver.smtp` keeps the connections and decides what each reply means.
"""

from __future__ import annotations

import contextlib
import re
import smtplib

#: An address smtplib's `quoteaddr` returns as `<address>`: a dot-atom local part and a
#: domain of dot-separated labels. Any other goes through `quoteaddr` (email.utils'
#: parser: two of its calls a message were a tenth of the send's CPU).
_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z"
)


def _quoted(address: str) -> str:
    """`address` as MAIL FROM / RCPT TO write it, exactly as smtplib's `quoteaddr`."""
    return f"<{address}>" if _DOT_ATOM.match(address) else smtplib.quoteaddr(address)


def transact(conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """`conn.sendmail(...)` for one recipient and `message_bytes` (CRLF lines, none that
    starts with a dot): the same commands, replies and exceptions, without parsing both
    addresses again and scanning the body for lines to dot-stuff in every message (a
    third of the CPU smtplib spent on a digest). A server that offers PIPELINING (RFC
    2920: the relays a list sends through do) gets MAIL, RCPT and DATA in one write."""
    size = f" size={len(data)}" if conn.does_esmtp and conn.has_extn("size") else ""
    commands = (("mail", f"FROM:{_quoted(sender)}{size}"), ("rcpt", f"TO:{_quoted(to)}"))
    pipelined = conn.has_extn("pipelining")
    if pipelined:
        conn.send("".join(f"{verb} {args}\r\n" for verb, args in commands).encode() + b"data\r\n")
    failure: smtplib.SMTPException | None = None
    for verb, args in (*commands, ("data", "")):
        if not pipelined:
            conn.putcmd(verb, args)
        code, resp = conn.getreply()
        if code == 421:  # the server is closing: nothing more comes on this connection
            _abandon(conn, code)
            raise failure or _refusal(verb, code, resp, sender, to)
        if code in _ACCEPTED[verb]:
            if verb == "data" and failure is not None:  # DATA taken after a refusal:
                conn.send(b".\r\n")  # end that message empty, unsent
                conn.getreply()
            continue
        failure = failure or _refusal(verb, code, resp, sender, to)
        if not pipelined:
            break
    if failure is not None:
        _abandon(conn, code)  # (not 421: that raised above)
        raise failure
    conn.send(data + b".\r\n")
    code, resp = conn.getreply()
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, resp)


#: The replies that let a transaction go on, by command.
_ACCEPTED = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}


def _refusal(verb: str, code: int, resp: bytes, sender: str, to: str) -> smtplib.SMTPException:
    """The exception smtplib's sendmail raises for this refusal."""
    if verb == "mail":
        return smtplib.SMTPSenderRefused(code, resp, sender)
    if verb == "rcpt":
        return smtplib.SMTPRecipientsRefused({to: (code, resp)})
    return smtplib.SMTPDataError(code, resp)


def _abandon(conn: smtplib.SMTP, code: int) -> None:
    """After a refusal, as smtplib does: 421 closes the connection, anything else RSETs."""
    if code == 421:
        conn.close()
        return
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        conn.rset()
