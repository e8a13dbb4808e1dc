"""An MO whose 060 an earlier one from the phone had, on the same connection, after the SMSC read our
acknowledgement of that one: a new SMS under a repeated stamp, not the same one delivered again.

The store takes an MO with the stamp, phone and text of an earlier copy for that copy delivered again
(`gateway.store.redelivery`): the SMSC delivers an SMS again with the stamp it gave it. An SMSC that
stamps to the minute (`yymmddhhmm00`), or whose clock is stuck, gives the phone's next SMS the same
stamp: two premium votes 5 s apart, the second stored as a duplicate, 'not charged twice'. Which it
is, the connection tells: the SMSC delivers again what it holds unacknowledged, under the packet
number it gave it (a retransmission), and an acknowledgement confirmed (a request of ours written
after it answered: `smsc.base.MoAcks`) is one the SMSC read. So an MO under another number, whose
stamp, phone and text an earlier one on this connection had, whose acknowledgement was confirmed,
is handed up without its stamp (`raw["smsc_time"]`): the store then judges it by the
acknowledgements alone, as for SMPP (a new SMS, unless it came within seconds of that one's
confirmation). The same number again is still that MO (an SMSC sending it again after another, or
after it read our answer: `tests/test_cimd2_mo_repeat.py`). Said once per link, naming no phone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import structlog

from smsc.base import InboundSms
from smsc.cimd2.messages import Once

log = structlog.get_logger(__name__)

KEPT = 4096  # stamped MOs remembered per connection (a minute of a busy one)
Key = tuple[str, str, str, str]  # (source, destination, 060, text)


@dataclass(slots=True)
class _Seen:
    number: int
    confirmed: bool = False


class MoStamps:
    """One connection's stamped MOs: by their stamp, phone and text, the packet number each came under
    and whether its acknowledgement was confirmed."""

    def __init__(self, link: str, said: Once) -> None:
        self.link = link
        self._said = said
        self._seen: OrderedDict[Key, _Seen] = OrderedDict()
        self._waiting: dict[int, _Seen] = {}  # by id() of each MO handed up, its confirmation due
        self._last: _Seen | None = None  # the MO `arrived` last, until `handed`

    def arrived(self, sms: InboundSms, number: int) -> InboundSms:
        """The MO as it is to be handed up: without its stamp when it is a new SMS under a repeated
        one. `handed` then names the object handed up (`MoAcks.arrived` may mark it anew)."""
        self._last = None
        if (stamp := sms.raw.get("smsc_time")) is None:
            return sms
        key = (sms.source, sms.destination, stamp, sms.text)
        earlier = self._seen.get(key)
        if earlier is not None and earlier.confirmed and earlier.number != number:
            self._said("cimd2.mo_060_repeated", link=self.link,
                       effect="an MO came with the 060, phone and text of one whose acknowledgement the SMSC"
                       " had read (an SMSC stamping to the minute, or a stuck clock): taken as a new SMS"
                       " by the acknowledgements, not as that one delivered again")  # fmt: skip
            sms = replace(sms, raw={k: v for k, v in sms.raw.items() if k != "smsc_time"})
        self._seen[key] = self._last = _Seen(number)
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
