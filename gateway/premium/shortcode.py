"""Whether a premium answer can come from its short code by the links it may leave by (R-4.5).

A CIMD2 sender is a sub-address the SMSC appends to its interface's number (`sender_prefix`): a
short code outside that number cannot be written at all, and the SMSC sends the answer from the
interface's own number. The phone then saw a number that is not premium, its next SMS reached no
client and was charged nothing, while `premium answers` said "sent" and the bill "from 7355". So
`check-config` and the start name each such link and number, and an answer that would leave so is
refused with the reason (`answers.answer`) rather than sent from another number and recorded as
sent from the short code.
"""

from __future__ import annotations

from gateway.config import Config
from gateway.configbase import link_place
from gateway.configlinks import SmscSection, receipt_siblings
from gateway.smtp.recipients import router_for
from smsc.cimd2.messages import carries

# Said to the client's mail server at DATA: what the client reads in its bounce.
PREMIUM_NO_SHORT_CODE = (
    "550 5.3.5 This premium SMS cannot be answered from {}: SMSC link {} sends only from its own"
    " number (sender_prefix {}), so the phone would not see the premium number; nothing was sent and"
    " no free answer was used up; ask the gateway's admin to fix the link's sender_prefix"
)


def loses(link: SmscSection, number: str) -> bool:
    """The link would send `number` as the interface's number (`smsc.cimd2.messages.carries`)."""
    return link.type == "cimd2" and not carries(number, link.sender_prefix)


def answer_links(cfg: Config, via: str | None, phone: str) -> list[str]:
    """The links an answer may leave by, as the dispatcher chooses (`gateway.linkchoice`): its vote's
    link and the other binds of that SMSC account, or with the vote's link gone, the phone's routes."""
    if via is None:
        return router_for(cfg).candidates(phone)
    return [via, *receipt_siblings(cfg.smsc).get(via, ())]


def losing_link(cfg: Config, number: str, names: list[str]) -> SmscSection | None:
    """The first of the links `names` that would send `number` from another number, if any."""
    by_name = {link.name: link for link in cfg.smsc}
    return next((by_name[n] for n in names if n in by_name and loses(by_name[n], number)), None)


def shortcode_doubts(cfg: Config) -> list[str]:
    """Each CIMD2 link whose sender_prefix cannot carry premium numbers: votes may come by any link,
    and their answers leave by it. Not refused (the link's other SMS go well), but said, with what
    becomes of the answers, as `run` refuses them."""
    numbers = list(cfg.premium.tariffs)
    doubts = []
    for link in cfg.smsc:
        lost = [n for n in numbers if loses(link, n)]
        if not lost:
            continue
        doubts.append(
            f"{link_place(link.name, 'sender_prefix')}: premium number{'s' if len(lost) > 1 else ''}"
            f' {", ".join(lost)} {"are" if len(lost) > 1 else "is"} outside "{link.sender_prefix}": the'
            " SMSC would send their free answers from the interface's own number, so answers to premium"
            " SMS that came by this link are refused (550 5.3.5); give the short codes an interface of"
            ' their own, as a link with sender_prefix = "<short code>", or ask the operator'
        )
    return doubts
