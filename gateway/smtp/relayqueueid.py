"""The queue id a relaying mail server gave a mail, read from the top Received: field (R-1.8).

A mail without a Message-ID (scripts, printers, monitoring systems: Postfix adds none for a relayed
client) had nothing that told a retry from a new mail, so when the 250 after its final dot was lost
on the way back, the server's retry (Postfix logs "may be sent more than once") sent a second SMS.
The server that hands the mail on retries it from its queue with the same bytes, its own Received:
line on top, and for Postfix, Exim and Sendmail that line names the queue entry, which is one mail.
A mail with a Message-ID but no Date:, or one no clock wrote (more than the retry window before
this line's date), has it in its key too: a device that writes one fixed Message-ID on every alert
and no Date, or a fixed one, had each new alert taken for a retry of the first. With a recent Date:
it does not count, as one mail may be queued twice upstream (a client's own retry).

Only those exact shapes count, each as its server writes it (case and clause order as written, the
`by` and `id` clauses outside any comment): a wrong guess merges two mails and loses the second SMS,
where no guess only keeps the old behaviour. Exchange's "with Microsoft SMTP Server id 15.20.1234.5"
is the server's version, the same on every mail (a monitoring system's repeated "disk full" alert
would go once), and qmail's "(qmail 12345 invoked from network)" is a process id that serves many
mails; neither is an id here, and nothing made of digits and dots ever is.
"""

from __future__ import annotations

import re

# The header block is read this far at most: the top Received: field comes first in practice, and
# a mail's size is bounded elsewhere, not here.
HEAD_SCAN = 64 * 1024

_HOST = r"(?P<by>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
# Postfix smtpd: "by HOST (Postfix) with ESMTP id QID" then ";" or "for <RCPT>;". The protocol word
# is RFC 3848's (S after STARTTLS, A after AUTH) or RFC 6531's UTF8SMTP. Short queue ids are hex,
# long ones (enable_long_queue_ids) base 52 with a "z" between their two halves.
_POSTFIX = re.compile(
    rf"by {_HOST} \(Postfix\) with (?:E?SMTP|UTF8SMTP)S?A? id (?P<id>[0-9A-Za-z]{{6,24}})(?: for <[^<>]*>)?;"
)
# Exim's default received_header_text: "by HOST with PROTOCOL [(TLS) [tls CIPHER]] (Exim VERSION
# [(BUILD)]) [(envelope-from <S>)] id ID [for RCPT];". Ids before 4.97 are 6-6-2 characters of base
# 62, from 4.97 on 6-11-4 (base 36 on case-insensitive file systems, a subset).
_EXIM = re.compile(
    rf"by {_HOST} with [a-z0-9-]+(?: \([^()]*\))?(?: tls [A-Za-z0-9_-]+)?"
    r" \(Exim [0-9][^()]*(?:\([^()]*\)[^()]*)?\)(?: \(envelope-from <[^<>]*>\))?"
    r" id (?P<id>[0-9A-Za-z]{6}-(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{11}-[0-9A-Za-z]{4}))"
    r"(?: for [^;()]*)?;"
)
# Sendmail 8.12 on: "by HOST (8.15.2/8.15.2) with ESMTP id QID [(version=... verify=...)]
# for <RCPT>;", the queue id eight characters of base 60 (time and a sequence) and the process id.
_SENDMAIL = re.compile(
    rf"by {_HOST} \([0-9]+\.[0-9]+(?:\.[0-9]+)*(?:/[^()]*)?\) with ESMTPS?A?"
    r" id (?P<id>[0-9A-Za-x]{8}[0-9]{6,10})(?: \([^()]*\))? for <[^<>]*>;"
)
_SHAPES = (("postfix", _POSTFIX), ("exim", _EXIM), ("sendmail", _SENDMAIL))
_VERSION_LIKE = re.compile(r"[0-9.]+")
_BY = re.compile(r"(?:^| )by ")


def top_received(raw: bytes) -> str | None:
    """The first Received: field of the header block, unfolded, its whitespace runs one space;
    None when the mail has none before its body or past `HEAD_SCAN`, or its header block is not one."""
    head = raw[:HEAD_SCAN].lstrip(b" \t\r\n")
    # Only the header block is split, and only when a field in it may be named Received: every mail
    # without Date: asks (e2e's bench mail: 27 k instructions, its body split too and each field's
    # name lowered in turn; 8 k now). The block reaches a blank line, which ends the loop below: the
    # first CRLF one, else the first LF one (an earlier blank line of other ends is inside it).
    end = head.find(b"\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    if end >= 0:
        block = head[: end + 1]  # its last line empty: the blank one
        if b"received:" not in block.lower():
            return None
        lines = block.split(b"\n")
    else:
        lines = head.split(b"\n")
        if len(raw) > HEAD_SCAN:
            lines.pop()  # cut off by the scan: not known to be whole
    found: list[bytes] | None = None
    ended = False
    for line in lines:
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if found is not None:
                found.append(line)
            continue
        if found is not None:
            ended = True  # the next field or the body: the field is whole
            break
        if not line:
            return None  # the body: no Received: field above it
        name, colon, value = line.partition(b":")
        if not colon:
            return None  # not a header block
        if name.lower() == b"received":
            found = [value]
    if found is None or (not ended and len(raw) > HEAD_SCAN):
        return None
    return " ".join(b" ".join(found).decode("latin-1").split())


def _depths(text: str) -> list[int]:
    """Each character's comment depth (RFC 5322 3.2.2: nested parentheses, backslash pairs)."""
    depths: list[int] = []
    depth, escaped = 0, False
    for ch in text:
        depths.append(depth)
        if escaped:
            escaped = False
        elif ch == "\\" and depth:
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
    return depths


def queue_identity(raw: bytes) -> str | None:
    """Which server's queue entry the mail is, "MTA\\0by-host\\0queue id", from its top Received:
    field; None when that field is not one of the shapes above, taken at its first `by` clause
    outside a comment (a HELO or comment that says "by ... id ..." proves nothing)."""
    text = top_received(raw)
    if text is None:
        return None
    depths = _depths(text)
    by = next((m for m in _BY.finditer(text) if depths[m.end() - 3] == 0), None)
    if by is None:
        return None
    start = by.end() - 3
    for mta, shape in _SHAPES:
        found = shape.match(text, start)
        if found is None or depths[found.start("id")] != 0:
            continue
        if _VERSION_LIKE.fullmatch(found["id"]):
            return None  # a version, or an id no server of these writes
        return f"{mta}\0{found['by'].lower()}\0{found['id']}"
    return None
