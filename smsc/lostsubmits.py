"""Submits the SMSC may have taken without its answer ever reaching us, waiting for the delivery report
that proves it did: what CIMD2's status reports (`smsc.cimd2.gracereports`) and SMPP's receipts
(`smsc.smpp.lostreceipts`) share.

A submit written to a connection that then went (the SMSC closed it, a reset, a response timeout that
ended the session) may have reached the SMSC: no submit answer can come any more, but the SMSC still
reports the SMS, and a report read meanwhile that names the submit's phone and a time it can have been
stamped at answers it, as if the SMSC had taken it in time. How a report names its SMS is the
protocol's (`_matches`, `_take`); what both keep is here: the submit's late answer
(`SubmitResult.late`), open for twice the link's grace; the hold on its part's re-send
(`lateholds.TimedHold`) while the reports the SMSC owes may still come, ended the link's
`lost_submit_settle_seconds` after a bind of the account is up again, and never sooner than that after
the loss, the grace at the most; and the reports read that named no submit yet, for one that goes
unanswered after them. A wrong match loses an SMS, a missed one sends it twice: each protocol matches
only where no other SMS can be meant.

Binds of one SMSC account share what they await and the reports they read: the SMSC reports an SMS on
whichever bind it likes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from smsc.base import SubmitResult
from smsc.lateholds import TimedHold

# Reports read that named no submit, kept for a submit that goes unanswered after them: those of a
# full window on each bind, and more.
READ_KEPT = 256

R = TypeVar("R")  # a report as the protocol reads it


@dataclass(slots=True)
class Awaited:
    owner: LostSubmits[Any]  # the link it was written by
    part_id: int
    phone: str  # the phone as the protocol's reports name it
    first: float  # the SMSC's earliest stamp for it, on its clock: the write
    last: float  # its latest: the response timeout, the close (CIMD2); none before the report (SMPP)
    late: asyncio.Future[SubmitResult | None]
    timer: asyncio.TimerHandle
    text: str = ""  # the part's text, for a report that quotes it (SMPP)
    hold: TimedHold | None = None  # its re-send's, lost with its session (module docstring)
    lost_at: float = 0.0  # loop time it was lost


@dataclass(slots=True)
class Account(Generic[R]):
    """What the binds of one SMSC account await, and the reports they read that named none of it."""

    awaited: list[Awaited] = field(default_factory=list)
    read: deque[R] = field(default_factory=lambda: deque(maxlen=READ_KEPT))
    members: weakref.WeakSet[LostSubmits[Any]] = field(default_factory=weakref.WeakSet)


# One per event loop and account: futures and timers are the loop's.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, Account[Any]]] = (
    weakref.WeakKeyDictionary()
)


class LostSubmits(Generic[R]):
    """One link's submits awaiting their report; `account` names the SMSC account whose binds share
    them, `settle` the wait for reports after a bind is up again (module docstring)."""

    def __init__(self, link: str, account: object = None, settle: float = 30.0) -> None:
        self.link = link
        self.settle = settle
        self.account = account if account is not None else ("link", link)
        self.up_since: float | None = None  # loop time of the login of its session up, if one is

    def _shared(self) -> Account[R]:
        by_account = _SHARED.setdefault(asyncio.get_running_loop(), {})
        shared = by_account.get(self.account)
        if shared is None:
            shared = by_account[self.account] = Account()
        shared.members.add(self)
        return shared

    def session_up(self, up: bool) -> None:
        """The link logged in (`up`), or its session went: the submits lost with a dropped session go
        their link's settle after a login (module docstring)."""
        if not up:
            self.up_since = None
        elif self.up_since is None:
            self.up_since = asyncio.get_running_loop().time()
            shared = self._shared()
            for awaited in shared.awaited:
                self._settle_after_login(awaited, shared)

    @staticmethod
    def _settle_after_login(awaited: Awaited, shared: Account[R]) -> None:
        """End the hold of `awaited` its link's settle after it was lost with a bind of the account up,
        its own only by a login since (the session it went with may not have said it went yet): never
        sooner than the settle after the loss, whichever bind is up."""
        owner, lost = awaited.owner, awaited.lost_at
        ups = [max(m.up_since, lost) for m in shared.members
               if m.up_since is not None and (m is not owner or m.up_since > lost)]  # fmt: skip
        if awaited.hold is not None and ups:
            awaited.hold.end_at(min(ups) + owner.settle)

    def _await(self, awaited: Awaited, grace: float, *, lost: bool, look_back: bool = True) -> None:
        """Await `awaited`'s report; `lost` with its session: its part's re-send held (module
        docstring). A report read before, the oldest first, that names it answers it at once, unless
        the caller looks back itself (`look_back` False: once the others lost with it are awaited too)."""
        loop = asyncio.get_running_loop()
        shared = self._shared()
        shared.awaited.append(awaited)
        if lost:
            awaited.lost_at = loop.time()
            awaited.hold = TimedHold(loop, awaited.part_id, awaited.lost_at + grace)
            self._settle_after_login(awaited, shared)
        found = (
            next((r for r in shared.read if self._matches(r, shared, awaited)), None) if look_back else None
        )
        if found is not None:
            shared.read.remove(found)
            self._take(found, awaited)

    def _matches(self, report: R, shared: Account[R], only: Awaited | None = None) -> list[Awaited]:
        """The submits awaited (`only` that one) that `report` names, the likeliest first."""
        raise NotImplementedError

    def _take(self, report: R, awaited: Awaited) -> None:
        """Settle `awaited` as taken, as `report` says."""
        raise NotImplementedError

    def stop(self) -> None:
        """The link stops: no report can answer its submits any more."""
        by_account = _SHARED.get(asyncio.get_running_loop(), {})
        shared = by_account.get(self.account)
        for awaited in [a for a in shared.awaited if a.owner is self] if shared is not None else []:
            self._settle(awaited.late, None)

    def _settle(self, late: asyncio.Future[SubmitResult | None], result: SubmitResult | None) -> None:
        shared = self._shared()
        ended = [a for a in shared.awaited if a.late is late]
        for awaited in ended:
            awaited.timer.cancel()
            shared.awaited.remove(awaited)
        if not late.done():
            late.set_result(result)
        for awaited in ended:  # after the answer: its watch is woken first (`gateway.late_answers`)
            if awaited.hold is not None:
                awaited.hold.end()
