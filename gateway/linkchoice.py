"""Which link a claimed part leaves by: the first of its number's routes (`gateway.routing.Router`)
that is up and has a free window place, passing over links that just refused it or are throttled
unless no other is left; a part of a long SMS waits for the link its first part took.

A phone joins the parts of a long SMS by their originator and reference: parts that left by two
SMSCs (the prefix link busy, the default link free) reach it with whatever originator each SMSC puts
on them, and an SMSC that rewrites it leaves the phone two halves. Kannel keeps them together the
same way: it splits a message on the link it routed it to.

A part of a long SMS is tied to its SMS's link once that link's SMSC took another part of it (or
holds one unanswered): a throttle, a temporary error or the session lost on it does not move it to
another link, nor does the link going down (nor, after a start, the link not connected yet). It waits
for that link, back in the queue while the link is down, or leaves by another bind of the same SMSC
account (`smsc_account`: one SMSC, which writes every part alike; a link renamed is one,
`gateway.linkbinds`). An SMS that waited LONG_SMS_WAIT_SECONDS for its link down, no longer
configured or refusing its parts for now (a temporary error or no answer; a throttle is waited out)
goes again whole by another link under a new reference (`gateway.longsms`), which leaves that link
aside while another is up. Nothing moves while a late answer to a part may come, nor while a part
left unanswered was not asked again: the SMSC may have it, and one lost answer moved the SMS, which
reached the phone twice, billed by two operators. An SMSC that keeps its session up and answers no
submit keeps the SMS no longer than its late answers last (the session ends at a window of them
unanswered, or the grace runs out). An SMS none of whose parts the link took may still leave by
another link, whole.

A phone's next SMS follows the bind of an SMSC account its SMS in hand (given a window place, not yet
done) went by, and waits for a place there: by another bind it went straight out, past the earlier
ones waiting for that bind's rate, and the phone had them out of order.

A number under an exclusive prefix has no default link among its routes (`Router`): with its links
down or full it waits here. A premium answer pinned to its vote's link still leaves by that link
(or a bind of its account): its short code is that operator's, and the phone reached us through it.
"""

from __future__ import annotations

import time
from asyncio import Future
from collections import OrderedDict
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from gateway.linkbinds import renamed_links
from gateway.longsms import LONG_SMS_WAIT_SECONDS, moved_away, send_whole_again
from gateway.routing import Router
from gateway.store.db import Store
from gateway.store.partnotes import LINK_GONE, LINK_OFF_ROUTE, TIED_WAIT
from gateway.store.records import ClaimedPart
from smsc.base import LinkState, Outcome, SmscLink, SubmitResult
from smsc.pacing import LinkPacer

# Long SMS whose link is remembered: an entry outlives its message only until this many newer
# long SMS have gone.
LONG_SMS_KEPT = 4096


@dataclass(slots=True)
class _LongSms:
    """The link a long SMS's parts leave by, and what ties them to it."""

    link: str  # "": none has left yet
    taken: bool = False  # the link's SMSC took a part (before this start: the store says so)
    sending: set[int] = field(default_factory=set)  # parts handed to `link`, not answered yet
    waiting: float | None = None  # since when parts wait for `link` down or refusing, none taken since
    # Parts of it `link` left unanswered: their late answers, which may still come (`moving`).
    late: dict[int, Future[SubmitResult | None]] = field(default_factory=dict)
    silent: dict[int, int] = field(default_factory=dict)  # part -> its submits unanswered in a row
    shunned: str = ""  # the link it was moved away from (`moving`): passed over while another is up

    def tied(self, part_id: int) -> bool:
        """Whether the part leaves by `link` alone: its SMSC took another part, or holds one now."""
        return self.taken or bool(self.sending - {part_id})


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
        self._clock = clock  # the dispatcher's: how long a long SMS has waited for its link
        # A link no longer configured -> the configured link of the same SMSC bind (`gateway.linkbinds`).
        self.renamed: dict[str, str] = {}
        # message id -> the link its parts leave by
        self._long: OrderedDict[int, _LongSms] = OrderedDict()
        # phone -> the link its SMS in hand (given a window place, not done) last left by, and how many
        self._phones: dict[str, tuple[str, int]] = {}

    def _up(self, name: str) -> bool:
        return (link := self.links.get(name)) is not None and link.state == LinkState.ACTIVE

    def own(self, via: str) -> list[str]:
        """A part's own link and the other binds of its SMSC account that are configured; for a link
        renamed since, the configured one of its bind first."""
        base = via if via in self.links else self.renamed.get(via, via)
        binds = (n for n in self._siblings().get(base, ()) if n in self.links)
        return [via, *([base] if base != via else []), *binds]

    def routable(self, part: ClaimedPart) -> bool:
        """Whether a link that may take the part is up (its links may all be full)."""
        if part.via is not None and part.via in self.links:
            # else back to the queue for a while, not kept claimed
            return any(self._up(name) for name in self.own(part.via))
        if part.udh and (sms := self._long.get(part.message_id)) and sms.link and sms.tied(part.id):
            if self._bind(sms.link, part) is None or not self._on_route(part, sms.link):  # wait (`moving`)
                self._wait(sms)
                return False
            return True
        return any(self._up(name) for name in self.router.candidates(part.destination))

    def could_go(self, destination: str, via: str | None) -> bool:
        """Whether a link up may take a part to `destination` (pinned to `via`): its own links for a
        pinned one, else its number's routes. A throttled link is up; a long SMS's tie to the link that
        took a part of it is left to the claim (`routable`), so that it may still go whole by another
        link (`moving`). The parts no such link serves wait unclaimed for one (`gateway.linkwaits`).
        A number no link configured serves (its route taken out of the config) may go: its claim
        fails it at once as such (`OutcomeRecorder`); kept waiting for a link that would never come,
        it bounced a day later as if its link had been down."""
        if via is not None and via in self.links:
            return any(self._up(name) for name in self.own(via))
        return not self.router.serves(destination) or any(
            self._up(name) for name in self.router.candidates(destination)
        )

    def pick(self, part: ClaimedPart, avoid: AbstractSet[str]) -> str | None:
        """The link to send the part by now; None while its links are full (or down)."""
        if part.via is not None and part.via in self.links:
            # Its own links (a premium answer's: the vote's and the other binds of its account) and
            # no other while the vote's is configured, whatever became of its last submit: its short
            # code is that operator's. Failed over by the phone's routes after a session lost on the
            # submit, it went out by another operator at once, and a possible duplicate (the first
            # copy's late answer is that link's). One that refused it just now goes last.
            ready = [n for n in self.own(part.via) if self._up(n) and self.pacers[n].free()]
            return next((n for n in ready if n not in avoid), ready[0] if ready else None)
        names = self.router.candidates(part.destination)
        if part.udh and (name := (sms := self._sms(part.message_id)).link):
            on_route = self._on_route(part, name)
            if sms.tied(part.id) and not on_route:
                return None  # it waits, then goes again whole by a link its routes take (`moving`)
            if sms.tied(part.id) or (on_route and self._up(name) and name not in avoid):
                # The link the SMS's other parts left by: wait for its window (or its throttle pause,
                # or for it to come back up); while it is down, another bind of its SMSC account.
                bind = self._bind(name, part) if sms.tied(part.id) else name
                return bind if bind is not None and self.pacers[bind].free() else None
        elif part.udh and sms.shunned and self._other_smsc_up(part, sms.shunned):
            names = [n for n in names if n not in self.own(sms.shunned)]  # moved away from it (`moving`)
        held = self._phones.get(part.destination)
        if (
            held
            and (name := held[0]) in names
            and name not in avoid
            and self._up(name)
            and len(self.own(name)) > 1
        ):
            # The phone's SMS in hand went by a bind of an SMSC account with more: this one waits for a
            # place there. By another bind it reached the SMSC first (the first waited for its rate),
            # the phone had them out of order.
            return name if self.pacers[name].free() else None
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

    def _on_route(self, part: ClaimedPart, name: str) -> bool:
        """Whether the number's routes take `name` (or another bind of its SMSC account). Routes changed
        before a restart: the rest of a long SMS tied to a link they no longer allow left by it all the
        same; it waits as for a link gone from the config, and goes again whole by another (`moving`)."""
        candidates = self.router.candidates(part.destination)
        return any(n in candidates for n in self.own(name))

    def _trim(self) -> None:
        if len(self._long) > LONG_SMS_KEPT:
            self._long.popitem(last=False)

    def _bind(self, name: str, part: ClaimedPart) -> str | None:
        """The link up of `name` and the other binds of its SMSC account, `name` first, that the part's
        number's routes take: one SMSC, which writes the originator of every part alike. A bind whose
        routes do not serve the number took the rest of a long SMS all the same, by a link the admin
        never gave that number."""
        routes = self.router.candidates(part.destination)
        return next((n for n in self.own(name) if n in routes and self._up(n)), None)

    def moving(self, part: ClaimedPart) -> tuple[str, float] | None:
        """(the link it leaves, how long it waited) when the part's long SMS goes again whole by
        another link (`gateway.longsms`): tied to a link down, no longer configured or refusing its
        parts for now (up, it answered each a temporary error or nothing) since LONG_SMS_WAIT_SECONDS
        or more, none of its parts on the wire or waiting for a late answer, none left unanswered once
        and not asked again, and a link of another SMSC up for its number. Up and refusing (or
        silent), it kept them for good: each part backed off there until held."""
        sms = self._long.get(part.message_id) if part.udh else None
        if sms is None or not sms.link or sms.waiting is None or sms.sending or not sms.tied(part.id):
            return None
        if any(not late.done() for late in sms.late.values()) or 1 in sms.silent.values():
            # A part's submit went unanswered and its answer may still come (`gateway.late_answers`):
            # moved meanwhile, the SMSC that may have it goes on sending it while the other sends it
            # again, under another reference; the phone gets two copies, billed by two operators.
            # One unanswered submit is no sign of a stuck SMSC either (a window of one ends the
            # session at it, which settles its late answer as none): the part goes to it once more.
            return None
        name, waited = sms.link, self._clock() - sms.waiting
        if waited < LONG_SMS_WAIT_SECONDS:
            return None
        if not self._other_smsc_up(part, name):
            return None
        # Its parts are all claimed again: the first picks a link, the one it leaves last.
        self._long[part.message_id] = _LongSms("", shunned=name)
        return name, waited

    def waits_for(self, part: ClaimedPart) -> str | None:
        """The link a part handed back unsent waits for (`routable` False) while a link of another SMSC
        is up for its number: its SMS's, down or no longer configured. "No link up" misled."""
        sms = self._long.get(part.message_id) if part.udh else None
        if sms is None or not sms.link or not sms.tied(part.id):
            return None
        if self._bind(sms.link, part) is not None and self._on_route(part, sms.link):
            return None
        return sms.link if self._other_smsc_up(part, sms.link) else None

    def _other_smsc_up(self, part: ClaimedPart, name: str) -> bool:
        """Whether a link up for the part's number is none of `name`'s SMSC binds."""
        own = self.own(name)
        return any(self._up(n) for n in self.router.candidates(part.destination) if n not in own)

    def notes(self, parts: list[ClaimedPart]) -> dict[int, str]:
        """The notes of parts handed back unsent that wait for their SMS's link (`waits_for`)."""
        found = ((part, self.waits_for(part)) for part in parts if part.udh)
        return {part.id: TIED_WAIT.format(name, self._why_not(part, name)) for part, name in found if name}

    def _why_not(self, part: ClaimedPart, name: str) -> str:
        """What the note says of the link a long SMS's part waits for: gone, off its route, or down."""
        if name not in self.links:
            return LINK_GONE
        return "down" if self._on_route(part, name) else LINK_OFF_ROUTE

    def joined(self, part: ClaimedPart, name: str) -> bool:
        """Whether the SMSC behind `name` (a bind of it, or the link by its old name) took a part of
        the part's long SMS: it waits out that link's throttling and backs off for its refusals
        (`gateway.outcomes`) rather than fail over. Not seen since the start: the store knows (a read
        on this rare path)."""
        return bool(part.udh) and (sms := self._sms(part.message_id)).taken and name in self.own(sms.link)

    def send_again(self, store: Store, message_id: int, link: str, waited: float) -> None:
        """Inside a store write: the long SMS `moving` let go of goes again whole (`gateway.longsms`);
        should it stay as it was (a part of it held), its link is the store's again."""
        if not send_whole_again(store, message_id, link, waited):
            self._long.pop(message_id, None)

    def learn_renamed(self, store: Store) -> None:
        """Inside a store write, at the start: which links no longer configured were renamed, and
        which long SMS waiting to go again were moved away from a link (`moving`), passed over as
        before the stop."""
        self.renamed = renamed_links(store, self.links)
        for message_id, name in moved_away(store).items():
            link = self._taken(message_id) or ""  # gone again by the other link meanwhile
            self._long[message_id] = _LongSms(link, taken=bool(link), shunned=name)
            self._trim()

    def waiting(self) -> int:
        """How many long SMS wait for the link that took a part of them, down or refusing them."""
        return sum(1 for sms in self._long.values() if sms.waiting is not None)

    def _wait(self, sms: _LongSms) -> None:
        now = self._clock()
        if sms.waiting is None or sms.waiting > now:  # or the clock stepped back
            sms.waiting = now

    def leaving(self, part: ClaimedPart, name: str) -> None:
        """The part takes a window place of `name`: the next parts of a long SMS follow it, and the
        phone's next SMS while it is in hand (`pick`)."""
        held = self._phones.get(part.destination)
        self._phones[part.destination] = (name, held[1] + 1 if held else 1)
        if part.udh:
            sms = self._long.get(part.message_id)
            if sms is None or name not in self.own(sms.link):  # its first part, or the SMS failed over
                sms = self._long[part.message_id] = _LongSms(name)
            sms.sending.add(part.id)
            self._long.move_to_end(part.message_id)
            self._trim()

    def answered(self, part: ClaimedPart, name: str, result: SubmitResult) -> None:
        """What the SMSC behind `name` answered to the part: taken, the rest of its long SMS is tied
        to that link, and its wait for the link (`moving`) starts again when the link next goes or
        refuses; refused for now or unanswered with the SMS tied to it, the wait starts. Started by
        no answer alone, it never started: an SMSC that binds and answers keep-alives but no submit
        kept the SMS, its parts sent to it until held, while another link was up. What `moving`
        waits for first is kept: the late answer, and a part asked again after one unanswered."""
        if part.udh and (sms := self._long.get(part.message_id)) is not None and name in self.own(sms.link):
            sms.sending.discard(part.id)
            outcome = result.outcome
            if outcome is Outcome.UNANSWERED:
                sms.silent[part.id] = sms.silent.get(part.id, 0) + 1
                if result.late is not None:
                    sms.late[part.id] = result.late
            else:
                sms.silent.pop(part.id, None)
                sms.late.pop(part.id, None)
            if outcome is Outcome.ACCEPTED:
                sms.taken, sms.waiting = True, None
            elif outcome in (Outcome.TEMPORARY, Outcome.UNANSWERED) and sms.tied(part.id):
                self._wait(sms)

    def done(self, part: ClaimedPart) -> None:
        """The part's submit task ended (answered, or never sent: withheld, expired, stopped)."""
        if (held := self._phones.get(part.destination)) is not None:
            if held[1] > 1:
                self._phones[part.destination] = (held[0], held[1] - 1)
            else:
                del self._phones[part.destination]
        if part.udh and (sms := self._long.get(part.message_id)) is not None:
            sms.sending.discard(part.id)
