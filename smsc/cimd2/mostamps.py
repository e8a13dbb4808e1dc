"""Which MO under the 060, phone and text of an earlier one on the same connection is the SMSC sending
that one again, and which a new SMS under a repeated stamp.

The store takes an MO with the stamp, phone and text of an earlier copy for that copy delivered again
while that copy's acknowledgement is not known to have been read (`gateway.store.redelivery`): the
SMSC delivers an SMS again with the stamp it gave it. An SMSC that stamps to the minute
(`yymmddhhmm00`), or whose clock is stuck, gives the phone's next SMS the same stamp. On one
connection the packet number tells more. The SMSC numbers its requests from a counter of 128 even
numbers (protocols.md 1.2): a request under the number of an earlier one, before the counter can have
come round to it again (fewer than `OTHERS` requests of the SMSC in between), is that request again,
and is marked `resent`: the same SMS whatever became of its acknowledgement (an SMSC sending it again
after another, or after it read our answer: `tests/test_cimd2_mo_repeat.py`). One under another number,
or under the same one after the counter came round (a vote under 200, 127 other MOs, the phone's next
vote under 200 again), whose earlier copy's acknowledgement was confirmed (a request of ours written
after it answered: `smsc.base.MoAcks`), is a new SMS: handed up without its stamp (`raw["smsc_time"]`),
the store judges it by the acknowledgements alone, as for SMPP (a new SMS, unless it came within
seconds of that one's confirmation). Said once per link, naming no phone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import structlog

from smsc.base import InboundSms
from smsc.cimd2.messages import Once

log = structlog.get_logger(__name__)

KEPT = 4096  # stamped MOs remembered per connection (a minute of a busy one)
# The SMSC's requests that can come between two under one number before its counter comes round to
# that number again: the other 127 of its 128 (000, 002, ..., 254). Fewer in between, the same number
# is the same request. An SMSC whose counter is longer is taken for one that came round sooner: only
# an MO whose acknowledgement the SMSC read is judged anew so, and it delivers no such MO again.
OTHERS = 127
Key = tuple[str, str, str, str]  # (source, destination, 060, text)


@dataclass(slots=True)
class _Seen:
    number: int
    taken: int  # the connection's count of the SMSC's requests when it came (`MoStamps.took`)
    confirmed: bool = False


class MoStamps:
    """One connection's stamped MOs: by their stamp, phone and text, the packet number each came under,
    how many of the SMSC's requests came before it, and whether its acknowledgement was confirmed."""

    def __init__(self, link: str, said: Once) -> None:
        self.link = link
        self._said = said
        self._seen: OrderedDict[Key, _Seen] = OrderedDict()
        self._waiting: dict[int, _Seen] = {}  # by id() of each MO handed up, its confirmation due
        self._last: _Seen | None = None  # the MO `arrived` last, until `handed`
        self._taken = 0  # the SMSC's requests on this connection so far, none counted twice

    def took(self, *, again: bool = False) -> int:
        """The SMSC sent a request under a number of its counter (an MO, a report, an alive, anything
        but a retransmission of the one before, `again`): it moved that counter on. Counted as each is
        read: the count when it was read is its place (`arrived`)."""
        self._taken += 0 if again else 1
        return self._taken

    def arrived(self, sms: InboundSms, number: int, taken: int | None = None) -> InboundSms:
        """The MO as it is to be handed up: marked `resent` when it is an earlier one again, without its
        stamp when it is a new SMS under a repeated one. `took` has counted it (`taken` what it said
        then: the requests read after it, before it was served, are not between it and the earlier
        one); `handed` then names the object handed up (`MoAcks.arrived` may mark it anew)."""
        self._last = None
        if (stamp := sms.raw.get("smsc_time")) is None:
            return sms
        key = (sms.source, sms.destination, stamp, sms.text)
        earlier = self._seen.get(key)
        taken = self._taken if taken is None else taken
        if earlier is not None and earlier.number == number and taken - earlier.taken <= OTHERS:
            sms = replace(sms, resent=True)  # its number not yet free again: that request once more
            # The SMSC's counter did not move for it: the number is free again 127 others after the
            # first copy, not after this one (counted from here, the phone's next vote under that
            # number, after the counter came round, was taken for the first again, kept unpaid).
            taken = earlier.taken
        elif earlier is not None and earlier.confirmed:
            self._said("cimd2.mo_060_repeated", link=self.link,
                       effect="an MO came with the 060, phone and text of one whose acknowledgement the SMSC"
                       " had read (an SMSC stamping to the minute, or a stuck clock): taken as a new SMS"
                       " by the acknowledgements, not as that one delivered again")  # fmt: skip
            sms = replace(sms, raw={k: v for k, v in sms.raw.items() if k != "smsc_time"})
        self._seen[key] = self._last = _Seen(number, taken)
        self._seen.move_to_end(key)
        if len(self._seen) > KEPT:
            self._seen.popitem(last=False)
        return sms

    def handed(self, sms: InboundSms) -> None:
        """`sms`, the MO `arrived` last, is handed up: its acknowledgement's confirmation is awaited."""
        if self._last is not None:
            self._waiting[id(sms)] = self._last
            if len(self._waiting) > KEPT:  # those never acknowledged (a write that failed)
                del self._waiting[next(iter(self._waiting))]
        self._last = None

    def acked(self, sms: InboundSms, confirmed: bool) -> None:
        """The MO's acknowledgement was read by the SMSC (`confirmed`), or may not have been."""
        seen = self._waiting.pop(id(sms), None)
        if seen is not None and confirmed:
            seen.confirmed = True
