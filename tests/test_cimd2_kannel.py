"""Interop of `Cimd2Link` with Kannel's test_cimd2, an SMSC simulator written independently of ours."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from gateway.config import SmscSection
from smsc.base import LinkState, OutboundSms, Outcome
from smsc.cimd2.link import Cimd2Link
from smsc.encoding import concat_udh
from smsc.gsmalphabet import gsm_encode
from smsc.settings import LinkSettings
from tests.fakes.cimd2 import KannelCimd2, RecordingEvents, kannel_cimd2

KEY = re.compile(r"\d{12}:358401234567")


def section(port: int, **overrides: object) -> LinkSettings:
    values: dict[str, object] = {
        "name": "kannel", "type": "cimd2", "port": port, "system_id": "foo", "enquire_link_seconds": 30,
        "response_timeout_seconds": 5, "reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2,
    }  # fmt: skip
    return SmscSection.model_validate(values | overrides).driver_settings()


def gsm(text: str, *, part_id: int = 1, udh: bytes = b"") -> OutboundSms:
    return OutboundSms(part_id, "12345", "+358401234567", 0, gsm_encode(text), text, udh=udh)


Linked = Callable[..., AbstractAsyncContextManager[tuple[Cimd2Link, RecordingEvents, KannelCimd2]]]


@pytest.fixture
async def linked() -> AsyncIterator[Linked]:
    """Start test_cimd2 and a link logged in to it; both are stopped after the test."""

    @asynccontextmanager
    async def start(
        *, password: str = "bar", wait_active: bool = True, activity: int = 1, spew: int = 0, **cfg: object
    ) -> AsyncIterator[tuple[Cimd2Link, RecordingEvents, KannelCimd2]]:
        async with kannel_cimd2(activity=activity, spew=spew) as peer:
            link, events = Cimd2Link(section(peer.port, **cfg), password=password), RecordingEvents()
            await link.start(events)
            try:
                if wait_active:
                    await events.wait_for(lambda: link.state is LinkState.ACTIVE)
                yield link, events, peer
            finally:
                await link.stop()

    yield start


async def test_login_with_good_credentials_goes_active_and_logout_ends_the_session(linked: Linked) -> None:
    # 01 with 010/011 is accepted; stop() logs out and closes, after which test_cimd2 exits cleanly.
    async with linked() as (link, events, peer):
        assert events.states[:2] == [LinkState.CONNECTING, LinkState.ACTIVE]
        await link.stop()
        assert await peer.wait_exit() == 0
        assert link.state is LinkState.STOPPED


async def test_bad_password_is_a_fatal_login_refusal(linked: Linked) -> None:
    # 51 with 900:100 never makes the link active; it backs off at the maximum delay as "disconnected".
    async with linked(password="wrong", wait_active=False) as (link, events, _peer):
        await events.wait_for(lambda: LinkState.DISCONNECTED in events.states)
        assert LinkState.ACTIVE not in events.states
        result = await link.submit(gsm("Hello"))
        assert result.outcome is Outcome.TEMPORARY


async def test_gsm_submit_is_accepted_with_a_timestamp_key(linked: Linked) -> None:
    # A GSM text with characters that need CIMD escapes goes out in 033 and is accepted with 021+060.
    async with linked() as (link, _events, _peer):
        result = await link.submit(gsm("Hello @ world {€} ^|"))
        assert result.outcome is Outcome.ACCEPTED and KEY.fullmatch(result.message_id or "")
        assert link.stats().submitted == 1


async def test_ucs2_submit_with_alphanumeric_originator_is_accepted(linked: Linked) -> None:
    # Polish text goes as UTF-16BE hex in 034 with 030:8 and an alphanumeric originator in 027.
    async with linked() as (link, _events, _peer):
        text = "Zażółć gęślą jaźń"
        sms = OutboundSms(1, "ACME", "+358401234567", 8, text.encode("utf-16-be"), text)
        result = await link.submit(sms)
        assert result.outcome is Outcome.ACCEPTED and KEY.fullmatch(result.message_id or "")


async def test_concatenated_parts_are_all_accepted(linked: Linked) -> None:
    # Three parts with a concat UDH in 032 (and 044 on all but the last) are each answered.
    async with linked() as (link, _events, _peer):
        results = [await link.submit(gsm(f"part {i}", part_id=i, udh=concat_udh(7, 3, i))) for i in (1, 2, 3)]
        assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3


async def test_alive_on_idle_is_answered(linked: Linked) -> None:
    # With a short idle period the link sends 40s; test_cimd2 answers 90 and the session never drops.
    async with linked(enquire_link_seconds=0.05) as (link, events, _peer):
        await events.wait_for(lambda: int(link.stats().extra["alives"]) >= 3)
        assert link.state is LinkState.ACTIVE and link.stats().reconnects == 0
        assert (await link.submit(gsm("after alives"))).outcome is Outcome.ACCEPTED


async def test_random_mos_are_handled_and_acknowledged(linked: Linked) -> None:
    # Activity 2 sends MOs with random bytes, random UDH and maybe empty addresses; each is handed up
    # or rejected cleanly, and since test_cimd2 sends the next only after our 70, seeing two proves the ack.
    async with linked(activity=2) as (link, events, _peer):

        def seen() -> int:
            return len(events.delivered) + int(link.stats().extra["mo_rejected"])

        await events.wait_for(lambda: seen() >= 2, within=60)
        assert link.state is LinkState.ACTIVE and link.stats().reconnects == 0
        for sms in events.delivered:
            assert sms.source and sms.destination and isinstance(sms.text, str)
        assert (await link.submit(gsm("still fine"))).outcome is Outcome.ACCEPTED


async def test_spewed_garbage_is_survived(linked: Linked) -> None:
    # With --spew 1 real replies hide in a flood of random bytes; we still log in and get a submit answered.
    async with linked(spew=1) as (link, _events, _peer):
        result = await link.submit(gsm("through the noise"))
        assert result.outcome is Outcome.ACCEPTED
        assert int(link.stats().extra["parse_errors"]) > 0
