"""The acceptances an intake worker process has in the daemon's group commit, and their withdrawal.

A worker waits for the daemon's answer to a write only so long (most of the SMTP idle timeout:
`gateway.intake_child.Channel`). A daemon stopped meanwhile (SIGSTOP, a paused VM, swapping) that
then goes on commits the mail: a `451` said at the worker's bound told the client the mail failed
when it was sent, and a client that retried it (without a Message-ID) made a second SMS. So at its
bound the worker asks for the acceptance back (`x<id>`) and waits a little longer: an acceptance
whose piece has not yet run in a transaction is taken back (the piece, when its batch comes, writes
nothing) and the daemon says so (`x<id>`: the client hears `451`); one that ran is committed or
about to be, and its answer (`250`) is what the worker still waits for. No answer at all (the daemon
still stopped, or dead) and the worker closes the connection without a reply, which its client
retries, as after a worker killed once the client's data was in.

Only acceptances are withdrawn: every mail to phones is one, and its piece runs in the group commit
of the daemon's loop, the same thread that reads the withdrawal, so "not yet run" is a plain flag.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.smtp.accept import Writes, accept_now
from gateway.store.records import AcceptResult


class Withdrawn(Exception):
    """The worker took this acceptance back before it ran: nothing of it is written."""


class _Ticket:
    """One acceptance in flight: the piece the group commit runs (`run`, the withdrawal checked as it
    starts) and its future's callback (`done`): one object a mail, its bound methods the callables,
    where a partial of a partial and a callback's partial were built for every mail."""

    __slots__ = ("accepts", "args", "ran", "request_id", "withdrawn")

    def __init__(self, accepts: Accepts, request_id: int, args: tuple[Any, ...]) -> None:
        self.accepts = accepts
        self.request_id = request_id
        self.args = args
        self.withdrawn = False
        self.ran = False

    def run(self) -> AcceptResult:
        if self.withdrawn:
            raise Withdrawn()
        # Set for good: a piece run again after its batch was rolled back (`GroupCommit._run_batch`)
        # may have been the one committed for all the worker could know when it asked.
        self.ran = True
        return accept_now(self.accepts.writes.store, *self.args)

    def done(self, fut: asyncio.Future[AcceptResult]) -> None:
        accepts = self.accepts
        accepts.tickets.pop(self.request_id, None)
        if not fut.cancelled() and fut.exception() is None and fut.result().message_ids:
            accepts.writes.wake_dispatcher()  # SMS were queued (as `Writes.accept_soon` does)


class Accepts:
    """One worker process's acceptances not yet answered, by the worker's request id."""

    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.tickets: dict[int, _Ticket] = {}

    def submit(self, request_id: int, args: tuple[Any, ...]) -> asyncio.Future[AcceptResult]:
        """`Writes.accept_soon`'s steps, the withdrawal checked as the piece runs; raises as it does."""
        ticket = self.tickets[request_id] = _Ticket(self, request_id, args)
        try:
            fut: asyncio.Future[AcceptResult] = self.writes.store.submit(
                ticket.run, interactive=True, replayable=True
            )
        except BaseException:
            del self.tickets[request_id]
            raise
        fut.add_done_callback(ticket.done)
        return fut

    def withdraw(self, request_id: int) -> bool:
        """Take the acceptance back if its piece has not run: True if it never will."""
        ticket = self.tickets.get(request_id)
        if ticket is None or ticket.ran:
            return False  # answered already (crossed the withdrawal), or committed and being answered
        ticket.withdrawn = True
        return True
