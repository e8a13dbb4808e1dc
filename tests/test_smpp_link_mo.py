"""SmppLink and MO, against fake SMSCs over real TCP on loopback: a plain MO handed up (even in the
read that brings the bind answer), when its acknowledgement counts as confirmed, concatenated MO as
numbered segments, segments asked for again at the next login, data_sm with a message payload.
Split from test_smpp_link.py by subject (it was over 400 lines)."""

from __future__ import annotations

from smsc.base import (
    LinkState,
)
from tests.fakes.smsc import (
    DeafSMSC,
    EagerMoSMSC,
    HappySMSC,
)
from tests.test_smpp_link import ME, PHONE, running_link

# --- MO ---------------------------------------------------------------------------------------------


async def test_plain_mo_is_handed_up() -> None:
    # A reply from a phone arrives with E.164 addresses and its text.
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        assert await smsc.inject_mo(PHONE, ME, "Yes, 10:00 is fine") == 1
        await ev.wait_until(lambda: bool(ev.delivered))
        mo = ev.delivered[0]
        assert (mo.source, mo.destination, mo.text, mo.concat) == (PHONE, ME, "Yes, 10:00 is fine", None)


async def test_mo_in_the_same_read_as_the_bind_resp_is_served() -> None:
    # An SMSC with MOs waiting sends the first deliver_sm right behind bind_transceiver_resp; it must
    # reach the handler and be acknowledged, not refused as "not bound" (ESME_RINVBNDSTS).
    async with (
        EagerMoSMSC(PHONE, ME, "queued while you were away") as smsc,
        running_link(smsc.port) as (_, ev),
    ):
        await ev.wait_until(lambda: bool(ev.delivered))
        await smsc.wait_until(lambda: bool(smsc.stats.deliver_responses or smsc.stats.nacks))
        assert [m.text for m in ev.delivered] == ["queued while you were away"]
        assert smsc.stats.deliver_responses == [("mo", 0)] and smsc.stats.nacks == []


async def test_an_mo_ack_counts_once_the_smsc_answered_an_enquire_link_written_after_it() -> None:
    # The deliver_sm_resp is followed by an enquire_link; its answer tells that the SMSC read the
    # resp (it reads the connection in order), and the MO's acknowledgement is reported confirmed.
    async with HappySMSC() as smsc, running_link(smsc.port, enquire_link_seconds=300) as (_, ev):
        await smsc.inject_mo(PHONE, ME, "yes")
        await ev.wait_until(lambda: bool(ev.acked))
        assert ev.acked == [("yes", True)] and smsc.stats.commands["enquire_link"] == 1


async def test_an_mo_ack_whose_connection_ends_before_any_answer_is_unconfirmed() -> None:
    # The SMSC takes the deliver_sm_resp but the connection dies before it answers the enquire_link
    # after it: the resp may never have reached the SMSC, which may deliver the MO again.
    async with DeafSMSC() as smsc, running_link(smsc.port, enquire_link_seconds=300) as (link, ev):
        await smsc.inject_mo(PHONE, ME, "yes")
        await smsc.wait_until(lambda: smsc.stats.commands["ignored"] == 1)  # the enquire_link after the resp
        assert ev.acked == [] and smsc.stats.deliver_responses == [("mo", 0)]
        smsc.drop_all()
        await ev.wait_until(lambda: bool(ev.acked))
        assert ev.acked == [("yes", False)]
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        # A clean stop: the SMSC's unbind_resp confirms the acknowledgements written before the unbind.
        await smsc.inject_mo(PHONE, ME, "again")
        await smsc.wait_until(lambda: smsc.stats.commands["ignored"] == 2)
        await link.stop()
        assert ev.acked == [("yes", False), ("again", True)]


async def test_concatenated_mo_arrives_as_numbered_segments() -> None:
    # A long UCS-2 reply comes as several deliver_sm with a concat UDH; each is handed up with it.
    text = "Dziękuję za wiadomość. " * 8
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        await smsc.inject_mo(PHONE, "7155", text)
        await ev.wait_until(lambda: len(ev.delivered) == 3)
        parts = sorted(ev.delivered, key=lambda m: m.concat.seq if m.concat else 0)
        assert {(m.concat.ref, m.concat.total) for m in parts if m.concat} == {(parts[0].concat.ref, 3)}  # type: ignore[union-attr]
        assert "".join(m.text for m in parts) == text
        assert {m.data_coding for m in parts} == {8} and parts[0].destination == "7155"


async def test_an_mo_held_for_the_next_login_keeps_the_segments_asked_for() -> None:
    # The simulator holds an MO while no session is bound; asked for 3 segments, it sent the held
    # one as 2 (its default cut) at the login: a load test's 2-part votes were billed as 3 parts.
    text = "Dziękuję za wiadomość. " * 5
    async with HappySMSC() as smsc:
        assert await smsc.core.inject_mo(PHONE, "7155", text, protocol="smpp", parts=3) == 0  # held
        async with running_link(smsc.port) as (_, ev):
            await ev.wait_until(lambda: len(ev.delivered) == 3)
            assert {m.concat.total for m in ev.delivered if m.concat} == {3}
            parts = sorted(ev.delivered, key=lambda m: m.concat.seq if m.concat else 0)
            assert "".join(m.text for m in parts) == text


async def test_data_sm_mo_with_message_payload() -> None:
    # An MO sent as data_sm with message_payload is handed up and answered with data_sm_resp.
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        smsc.sessions[0].send_pdu(
            "data_sm", source_addr_ton=1, source_addr_npi=1, source_addr="48601123456", dest_addr_ton=3,
            dest_addr_npi=0, destination_addr="7155", esm_class=0, data_coding=0, message_payload=b"STOP",
        )  # fmt: skip
        await ev.wait_until(lambda: bool(ev.delivered))
        await smsc.wait_until(lambda: smsc.stats.commands["data_sm_resp"] == 1)
        assert (ev.delivered[0].source, ev.delivered[0].text) == (PHONE, "STOP")
