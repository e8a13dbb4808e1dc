"""A premium answer leaves by its vote's link (or another bind of that SMSC account) and by no other,
whatever became of its last submit there.

Its link's SMSC took the bind and dropped the session on the submit: the part, lost on the wire,
was noted to avoid that link, and the choice then sent it by the phone's routes at once, the short
code 7355 by another operator (and a possible duplicate: the first copy may have reached the phone).
The same followed a temporary refusal. Now it waits for its own link and goes by it again once that
link holds; a permanent refusal by its own link fails it, as it fails any SMS, and it goes by no
other link either.

Against real peers: two fake SMSCs over TCP on loopback, the daemon in-process with its SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_config
from gateway.linkchoice import LinkChoice
from gateway.routing import Router
from gateway.store.records import ClaimedPart
from smsc.base import LinkState
from smsc.pacing import LinkPacer
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import config_text, running_gateway, smsc_link
from tests.fakes.smsc import DisconnectingSMSC, FakeSMSC, HappySMSC
from tests.test_status_pacing import queue_pinned_answer
from tests.test_supervision import until

ESME_RSYSERR = 0x08  # a temporary refusal (smsc/smpp/pdu.py)


class RefusingOnceSMSC(FakeSMSC):
    """Answers the first submit ESME_RSYSERR (refused for now), then accepts."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.refused = 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if not self.refused:
            self.refused += 1
            session.answer_submit(seq, None, status=ESME_RSYSERR)
            return
        await super().on_submit(session, seq, sms)


def two_link_config(tmp_path: Path, main_port: int, vote_port: int) -> Path:
    """`main` takes every number (+48601000001 among them); `b`, the vote's link, a prefix of its own."""
    config = tmp_path / "config.toml"
    # A submit lost with its session goes again at the rebind: the fake SMSC sends no receipt of it.
    extra = 'prefixes = ["+4951"]\nlost_submit_settle_seconds = 0'
    text = config_text(tmp_path, smsc_port=main_port) + smsc_link("b", vote_port, extra)
    config.write_text(text)
    return config


async def test_an_answer_whose_link_drops_the_session_on_its_submit_waits_for_it(tmp_path: Path) -> None:
    async with HappySMSC() as other, DisconnectingSMSC(after=0, times=1) as vote_link:
        config = two_link_config(tmp_path, other.port, vote_link.port)
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: vote_link.sessions and other.sessions)
            await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
            await until(lambda: gw.states() in (["submitted"], ["delivered"]))
            assert vote_link.drops == 1  # the session dropped on its submit
            assert not other.received  # never by the phone's route: another operator's link
            assert [sms.source for sms in vote_link.received] == ["7355"]  # again by b once b held


async def test_an_answer_refused_for_now_by_its_link_goes_by_it_again(tmp_path: Path) -> None:
    async with HappySMSC() as other, RefusingOnceSMSC() as vote_link:
        config = two_link_config(tmp_path, other.port, vote_link.port)
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: vote_link.sessions and other.sessions)
            await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
            await until(lambda: gw.states() in (["submitted"], ["delivered"]))
            assert vote_link.refused == 1 and not other.received
            assert len(vote_link.received) == 1  # accepted by b the second time


async def test_an_answer_refused_for_good_by_its_link_fails_and_goes_by_no_other(tmp_path: Path) -> None:
    async with HappySMSC() as other, HappySMSC(reject_suffixes=["000001"]) as vote_link:
        config = two_link_config(tmp_path, other.port, vote_link.port)
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: vote_link.sessions and other.sessions)
            await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
            await until(lambda: gw.states() == ["failed"])
            assert not other.received and len(vote_link.received) == 1  # refused once, not sent again


def answer(via: str) -> ClaimedPart:
    return ClaimedPart(1, 1, 1, 1, "+4915112345678", "7355", 0, b"Danke", b"", "Danke", 2e9, via)


def test_the_choice_keeps_an_answer_on_its_accounts_links_once_one_failed_it() -> None:
    router = Router([("opa", ["+48"]), ("opb1", ["+49"]), ("opb2", ["+49"]), ("opc", ["+4915"])])
    links = {name: _Link(LinkState.ACTIVE) for name in ("opa", "opb1", "opb2", "opc")}
    pacers = {name: LinkPacer(10, 100, 1) for name in links}
    siblings = {"opa": ("opb1",), "opb1": ("opa",)}
    choice = LinkChoice(router, links, pacers, siblings=lambda: siblings)  # type: ignore[arg-type]
    assert choice.pick(answer("opa"), {"opa"}) == "opb1"  # the account's other bind first
    assert choice.pick(answer("opa"), {"opa", "opb1"}) == "opa"  # then its own again, not opc
    links["opa"].state = links["opb1"].state = LinkState.CONNECTING
    assert choice.pick(answer("opa"), {"opa"}) is None and not choice.routable(answer("opa"))


class _Link:
    def __init__(self, state: LinkState) -> None:
        self.state = state
