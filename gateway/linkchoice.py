"""Which link a claimed part leaves by: the first of its number's routes (`gateway.routing.Router`)
that is up and has a free window place, passing over links that just refused it or are throttled
unless no other is left; a part of a long SMS waits for the link its first part took while that
link is up.

A phone joins the parts of a long SMS by their originator and reference: parts that left by two
SMSCs (the prefix link busy, the default link free) reach it with whatever originator each SMSC puts
on them, and an SMSC that rewrites it leaves the phone two halves. Kannel keeps them together the
same way: it splits a message on the link it routed it to.

A number under an exclusive prefix has no default link among its routes (`Router`): with its links
down or full it waits here. A premium answer pinned to its vote's link still leaves by that link
(or a bind of its account): its short code is that operator's, and the phone reached us through it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet

from gateway.routing import Router
from gateway.store.records import ClaimedPart
from smsc.base import LinkState, SmscLink
from smsc.pacing import LinkPacer

# Long SMS whose link is remembered: an entry outlives its message only until this many newer
# long SMS have gone.
LONG_SMS_KEPT = 4096
# After a start the links connect in any order: for this long, the rest of a long SMS waits for the
# link its first parts took even while that link is not up yet, instead of leaving by the first up.
START_GRACE_SECONDS = 10.0


class LinkChoice:
    def __init__(
        self,
        router: Router,
        links: Mapping[str, SmscLink],
        pacers: Mapping[str, LinkPacer],
        taken: Callable[[int], str | None] = lambda _message_id: None,
        clock: Callable[[], float] = time.monotonic,
        siblings: Callable[[], Mapping[str, tuple[str, ...]]] = dict,
    ) -> None:
        self.router = router
        self.links = links
        self.pacers = pacers
        # The link an SMSC took earlier parts of a message by, from the store (`QueueRepo.link_taken`):
        # kept in memory alone, the map was empty after every start, and the rest of a long SMS
        # half sent before a restart left by another link.
        self._taken = taken
        # The other binds of a link's SMSC account (`gateway.configlinks.receipt_siblings`): a
        # premium answer may leave by any bind of its vote's account, as the short code is the
        # account's. Waiting for the vote's bind alone, it expired unsent while another was up.
        self._siblings = siblings
        self._clock = clock
        self._started = clock()
        # message id -> the link its parts leave by ("": none has left yet)
        self._long: OrderedDict[int, str] = OrderedDict()

    def _up(self, name: str) -> bool:
        return (link := self.links.get(name)) is not None and link.state == LinkState.ACTIVE

    def _own(self, via: str) -> list[str]:
        """A part's own link and the other binds of its SMSC account that are configured."""
        return [via, *(n for n in self._siblings().get(via, ()) if n in self.links)]

    def routable(self, part: ClaimedPart) -> bool:
        """Whether a link that may take the part is up (its links may all be full)."""
        if part.via is not None and part.via in self.links:
            # else back to the queue for a while, not kept claimed
            return any(self._up(name) for name in self._own(part.via))
        return any(self._up(name) for name in self.router.candidates(part.destination))

    def pick(self, part: ClaimedPart, avoid: AbstractSet[str]) -> str | None:
        """The link to send the part by now; None while its links are full (or down)."""
        if part.via is not None and part.via in self.links:
            # Its own links (a premium answer's: the vote's and the other binds of its account) and
            # no other while the vote's is configured, whatever became of its last submit: its short
            # code is that operator's. Failed over by the phone's routes after a session lost on the
            # submit, it went out by another operator at once, and a possible duplicate (the first
            # copy's late answer is that link's). One that refused it just now goes last.
            ready = [n for n in self._own(part.via) if self._up(n) and self.pacers[n].free()]
            return next((n for n in ready if n not in avoid), ready[0] if ready else None)
        if part.udh and (name := self._first_link(part.message_id)) and name not in avoid:
            if self._up(name):  # the link the SMS's other parts left by: wait for its window
                return name if self.pacers[name].free() else None
            if name in self.links and self._clock() - self._started < START_GRACE_SECONDS:
                return None  # just started: it may not have connected yet
        names = self.router.candidates(part.destination)
        fallback = None
        for name in names:
            if not self._up(name) or not self.pacers[name].free():
                continue
            if name in avoid or self.pacers[name].pause_left() > 0:
                # Refused it just now, or throttled by its SMSC: another link up takes it first. A
                # throttling link kept the parts it was given for as long as the throttling lasted
                # (its pause grows to half a minute) while later SMS to the same phones went by the
                # default link past them.
                fallback = fallback or name
                continue
            return name
        return fallback

    def _first_link(self, message_id: int) -> str:
        name = self._long.get(message_id)
        if name is None:  # not seen since the start (or pushed out): the store knows
            name = self._long[message_id] = self._taken(message_id) or ""
            self._trim()
        return name

    def _trim(self) -> None:
        if len(self._long) > LONG_SMS_KEPT:
            self._long.popitem(last=False)

    def leaving(self, part: ClaimedPart, name: str) -> None:
        """The part takes a window place of `name`: the next parts of a long SMS follow it."""
        if part.udh:
            self._long[part.message_id] = name
            self._long.move_to_end(part.message_id)
            self._trim()
