"""The SMTP sessions still connected when the daemon, or an intake worker, stops.

Each hears `421 4.3.2` and is closed (RFC 5321 3.8) once every write is done, not a bare TCP close
when the process exits. Not a session whose mail has arrived whole and is being answered: its reply
is the mail's outcome. The store's drain ends on the loop turn its last fsync is seen done, before
the DATA handlers waiting for it have resumed; the `421` then went out first, as the reply to a
mail that was committed, and its client's retry made a second SMS of a mail without a Message-ID.
`answered` waits for those replies; a session still owing one when the `421`s go loses its
connection without a reply (`gateway.smtp.outcome`: committed or not, its client cannot be told).
It waits too, LEAVE_SECONDS at most, for a taken mail's `250` to leave this process: written while
the client's receive window was full (a client reading its pipelined replies late), it waited in the
transport's buffer, which dies with the process, and the client, never told, sent the mail again.
The daemon and each intake worker wait for their sessions so, one mechanism in both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import structlog

from gateway.smtp import replies

log = structlog.get_logger(__name__)

_FIRST_TURNS = 10  # a handler whose write has ended replies within a loop turn or two: looked at each
_LOOK_SECONDS = 0.01  # then, for a handler still writing something else, this often
LEAVE_SECONDS = 5.0  # once every mail is answered, for the `250`s still in this process to leave it


def answering(session: Any) -> bool:
    """Its mail's body is whole and its DATA handler runs: aiosmtpd sets the envelope's content just
    before it calls the handler, and puts a new envelope in its place once the handler has returned."""
    envelope = session.envelope
    return bool(session._in_data) and envelope is not None and envelope.original_content is not None


def unsent(session: Any) -> bool:
    """Its mail was answered `250` (`GuardedSMTP._taken`, until its next DATA), and bytes of its replies
    are still in this process, not yet taken by the kernel: after STARTTLS in the TCP transport too."""
    if not getattr(session, "_taken", False) or session.transport is None:
        return False
    below = getattr(session, "_original_transport", None)
    return any(t is not None and t.get_write_buffer_size() > 0 for t in (session.transport, below))


def owes(session: Any) -> bool:
    return answering(session) or unsent(session)


async def answered(sessions: Collection[Any], within: float) -> int:
    """Until none of `sessions` is being answered, then until the `250`s are out of this process
    (LEAVE_SECONDS more at most), `within` seconds at most in all: how many still owe their reply."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    turns = 0
    while (owed := sum(1 for session in sessions if answering(session))) and loop.time() < until:
        await asyncio.sleep(0 if turns < _FIRST_TURNS else _LOOK_SECONDS)
        turns += 1
    until = min(until, loop.time() + LEAVE_SECONDS)
    if (slow := sum(1 for session in sessions if unsent(session))) and loop.time() < until:
        log.info("smtp.replies_leaving", sessions=slow, note="clients reading late: their 250 goes first")
    while (owed := sum(1 for session in sessions if owes(session))) and loop.time() < until:
        await asyncio.sleep(_LOOK_SECONDS)
    return owed


def close(session: Any) -> None:
    """`421` and the close; for a session owing its mail's outcome, the close alone."""
    if answering(session):
        if session.transport is not None:
            session.transport.abort()
        return
    session.say_and_close(replies.SHUTTING_DOWN)
