"""The Message-ID of an outbox mail that carries a phone's answer, kept on its row (`header_message_id`,
migration 72) by the statement that queues it.

A bounce of an answer mail quotes that id, and `gateway.answerbounce` finds the mail by it through the
column's index. Before, every bounce quoting an answer-form id (`<….sms-reply@host>`) was looked for in
the content of every answer mail of the look-back days, one full read of them each: a stream of forged
bounces cost a scan of 10 days of answers apiece.
"""

from __future__ import annotations

import re

# The mail's own Message-ID field, at a line's start in its header block (a Subject or Thread-Topic
# that quotes one does not start a line: the header writer keeps user data from breaking lines). The
# email package folds it after the colon when the gateway's hostname makes it long.
_OWN_ID = re.compile(
    rb"^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[\x21-\x3b\x3d\x3f-\x7e]{3,250}>)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


def own_message_id(content: bytes) -> str | None:
    """The Message-ID field of `content`'s header block, None if it has none the gateway could have
    written (the gateway's mail names one always)."""
    ends = [i for i in (content.find(b"\n\n"), content.find(b"\r\n\r\n")) if i >= 0]
    found = _OWN_ID.search(content, 0, min(ends) if ends else len(content))
    return found.group(1).decode("ascii") if found else None
