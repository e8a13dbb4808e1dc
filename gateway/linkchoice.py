"""Which link a claimed part leaves by: the first of its number's routes (`gateway.routing.Router`)
that is up and has a free window place, passing over links that just refused it or are throttled
unless no other is left; a part of a long SMS waits for the link its first part took while that
link is up.

A phone joins the parts of a long SMS by their originator and reference: parts that left by two
SMSCs (the prefix link busy, the default link free) reach it with whatever originator each SMSC puts
on them, and an SMSC that rewrites it leaves the phone two halves. Kannel keeps them together the
same way: it splits a message on the link it routed it to.

A throttle is that SMSC asking us to slow down, not a fault of the link: a part of a long SMS
throttled by its SMS's link, while another part of the SMS is taken or reserved there, waits out the
pause on that link instead of failing over (`gateway.outcomes` notes the link in `avoid` unless an
SMSC already accepted a part: the reserved ones went on by the first link, the throttled one by
another, and the phone got two halves). A temporary error, or the link down, still moves the rest
of the SMS, as for a link that drops partway.

A number under an exclusive prefix has no default link among its routes (`Router`): with its links
down or full it waits here. A premium answer pinned to its vote's link still leaves by that link
(or a bind of its account): its short code is that operator's, and the phone reached us through it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from gateway.routing import Router
from gateway.store.records import ClaimedPart
from smsc.base import LinkState, Outcome, SmscLink
from smsc.pacing import LinkPacer

# Long SMS whose link is remembered: an entry outlives its message only until this many newer
# long SMS have gone.
LONG_SMS_KEPT = 4096
# After a start the links connect in any order: for this long, the rest of a long SMS waits for the
# link its first parts took even while that link is not up yet, instead of leaving by the first up.
START_GRACE_SECONDS = 10.0


@dataclass(slots=True)
class _LongSms:
    """The link a long SMS's parts leave by, and which of them are tied to it."""

    link: str  # "": none has left yet
    taken: bool = False  # the store says its SMSC took parts before this start
    parts: set[int] = field(default_factory=set)  # those given to `link` since it became the SMS's
    throttled: set[int] = field(default_factory=set)  # those whose last answer from `link` was a throttle

    def waits_out(self, part_id: int) -> bool:
        """Whether the part waits for the SMS's link although that link just turned it away: it was
        throttled there, and another part of the SMS is taken or reserved there."""
        return part_id in self.throttled and (self.taken or bool(self.parts - {part_id}))


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
        # message id -> the link its parts leave by
        self._long: OrderedDict[int, _LongSms] = OrderedDict()

    def _up(self, name: str) -> bool:
        return (link := self.links.get(name)) is not None and link.state == LinkState.ACTIVE

    def _starting(self) -> bool:
        return self._clock() - self._started < START_GRACE_SECONDS

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
        if part.udh and (name := (sms := self._sms(part.message_id)).link):
            if self._up(name) and (name not in avoid or sms.waits_out(part.id)):
                # The link the SMS's other parts left by: wait for its window (or its throttle pause).
                return name if self.pacers[name].free() else None
            if name not in avoid and name in self.links and self._starting():
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

    def _sms(self, message_id: int) -> _LongSms:
        sms = self._long.get(message_id)
        if sms is None:  # not seen since the start (or pushed out): the store knows
            name = self._taken(message_id) or ""
            sms = self._long[message_id] = _LongSms(name, taken=bool(name))
            self._trim()
        return sms

    def _trim(self) -> None:
        if len(self._long) > LONG_SMS_KEPT:
            self._long.popitem(last=False)

    def leaving(self, part: ClaimedPart, name: str) -> None:
        """The part takes a window place of `name`: the next parts of a long SMS follow it."""
        if part.udh:
            sms = self._long.get(part.message_id)
            if sms is None or sms.link != name:  # its first part, or the SMS failed over
                sms = self._long[part.message_id] = _LongSms(name)
            sms.parts.add(part.id)
            self._long.move_to_end(part.message_id)
            self._trim()

    def answered(self, part: ClaimedPart, name: str, outcome: Outcome) -> None:
        """What the SMSC behind `name` answered to the part: after a throttle, the part of a long SMS
        tied to that link waits for it (`pick`); after anything else it may fail over as before."""
        if part.udh and (sms := self._long.get(part.message_id)) is not None and sms.link == name:
            if outcome is Outcome.THROTTLED:
                sms.throttled.add(part.id)
            else:
                sms.throttled.discard(part.id)
