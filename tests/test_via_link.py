"""Which link a premium answer (a part with its own link, `ClaimedPart.via`) leaves by.

Once its own link had refused it for the moment (a temporary error), it was passed over; with no
link of the phone's routes up it was then kept claimed, waiting for one, for ever, while its own
link was up again. The choice alone is tested here, on real pacers: the whole path, vote to answer
over a real SMSC, is tests/test_premium_answer_rules.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.linkchoice import LinkChoice
from gateway.routing import Router
from gateway.store.records import ClaimedPart
from smsc.base import LinkState
from smsc.pacing import LinkPacer


@dataclass
class Link:
    state: LinkState


def answer(via: str) -> ClaimedPart:
    return ClaimedPart(1, 1, 1, 1, "+4915112345678", "7355", 0, b"Danke", b"", "Danke", 2e9, via)


def test_an_answer_refused_by_its_own_link_goes_by_it_again_not_by_the_phones_route() -> None:
    router = Router([("opa", ["+48"]), ("opb", ["+49"])])
    links = {"opa": Link(LinkState.ACTIVE), "opb": Link(LinkState.ACTIVE)}
    pacers = {name: LinkPacer(10, 100, 1) for name in links}
    choice = LinkChoice(router, links, pacers)  # type: ignore[arg-type]
    assert choice.pick(answer("opa"), set()) == "opa"  # its own link, not the phone's (+49: opb)
    # Refused by it for the moment: by it again, never by the phone's route (another operator's
    # link, the short code not theirs: tests/test_pinned_answer_link_drop.py).
    assert choice.pick(answer("opa"), {"opa"}) == "opa"
    links["opb"].state = LinkState.CONNECTING
    assert choice.routable(answer("opa"))
    assert choice.pick(answer("opa"), {"opa"}) == "opa"  # whatever link of the phone's is up
    assert choice.pick(answer("gone"), set()) is None  # a link no longer configured: its routes


def test_an_answer_leaves_by_another_bind_of_its_votes_smsc_account() -> None:
    # Two binds to one operator account: the vote came by opb2, whose session then dropped and
    # could not bind again. The answer waited for opb2 alone until it expired, with opb1 up.
    router = Router([("opa", ["+48"]), ("opb1", ["+49"]), ("opb2", ["+49"])])
    links = {name: Link(LinkState.ACTIVE) for name in ("opa", "opb1", "opb2")}
    pacers = {name: LinkPacer(10, 100, 1) for name in links}
    siblings = {"opb1": ("opb2",), "opb2": ("opb1",)}
    choice = LinkChoice(router, links, pacers, siblings=lambda: siblings)  # type: ignore[arg-type]
    vote_by_b2 = replace(answer("opb2"), destination="+48601123456")  # the phone's route: opa
    assert choice.pick(vote_by_b2, set()) == "opb2"
    links["opb2"].state = LinkState.CONNECTING
    assert choice.routable(vote_by_b2)
    assert choice.pick(vote_by_b2, set()) == "opb1"  # the same account's other bind, not opa
    links["opb1"].state = LinkState.CONNECTING
    assert not choice.routable(vote_by_b2)  # none of the account's binds up: back to the queue
    assert choice.pick(vote_by_b2, set()) is None
