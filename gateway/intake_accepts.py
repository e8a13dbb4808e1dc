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
from dataclasses import dataclass
from functools import partial
from typing import Any

from gateway.smtp.accept import Writes, accept_now
from gateway.store.records import AcceptResult


class Withdrawn(Exception):
    """The worker took this acceptance back before it ran: nothing of it is written."""


@dataclass(slots=True)
class _Ticket:
    withdrawn: bool = False
    ran: bool = False


def _unless_withdrawn(ticket: _Ticket, work: partial[AcceptResult]) -> AcceptResult:
    if ticket.withdrawn:
        raise Withdrawn()
    # Set for good: a piece run again after its batch was rolled back (`GroupCommit._run_batch`)
    # may have been the one committed for all the worker could know when it asked.
    ticket.ran = True
    return work()


class Accepts:
    """One worker process's acceptances not yet answered, by the worker's request id."""

    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.tickets: dict[int, _Ticket] = {}

    def submit(self, request_id: int, args: tuple[Any, ...]) -> asyncio.Future[AcceptResult]:
        """`Writes.accept_soon`'s steps, the withdrawal checked as the piece runs; raises as it does."""
        ticket = self.tickets[request_id] = _Ticket()
        store = self.writes.store
        work = partial(_unless_withdrawn, ticket, partial(accept_now, store, *args))
        try:
            fut: asyncio.Future[AcceptResult] = store.submit(work, interactive=True, replayable=True)
        except BaseException:
            del self.tickets[request_id]
            raise
        fut.add_done_callback(partial(self._done, request_id))
        return fut

    def _done(self, request_id: int, fut: asyncio.Future[AcceptResult]) -> None:
        self.tickets.pop(request_id, None)
        if not fut.cancelled() and fut.exception() is None and fut.result().message_ids:
            self.writes.wake_dispatcher()  # SMS were queued (as `Writes.accept_soon` does)

    def withdraw(self, request_id: int) -> bool:
        """Take the acceptance back if its piece has not run: True if it never will."""
        ticket = self.tickets.get(request_id)
        if ticket is None or ticket.ran:
            return False  # answered already (crossed the withdrawal), or committed and being answered
        ticket.withdrawn = True
        return True
