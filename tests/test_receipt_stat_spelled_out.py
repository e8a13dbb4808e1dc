"""Receipts whose `stat:` spells the word out instead of SMPP 3.4's seven letters (appendix B), sent by
a small SMPP SMSC over TCP to the running gateway. `stat:DELIVERED` failed a delivered SMS and bounced
it; `stat:UNDELIVERED` bounced as "... (UNDELIV)ERED err:000", the word cut at its seventh letter."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest

from gateway.reasons import human_reason
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_receipts_variety import count, receipt

UNDELIVERED = "the operator could not deliver it to the phone"


@pytest.mark.parametrize(
    ("stat", "state", "reason"),
    [("DELIVERED", "delivered", None),
     ("delivered", "delivered", None),
     ("UNDELIVERED", "failed", f"{UNDELIVERED} (UNDELIVERED err:000)"),
     ("UNDELIVERABLE", "failed", f"{UNDELIVERED} (UNDELIVERABLE err:000)"),
     ("REJECTED", "failed", "refused by the operator (REJECTED err:000)"),
     ("ACCEPTED", "submitted", None),  # taken by the network, as ACCEPTD: nothing final yet
     ("BUFFERD", "submitted", None)],  # Kannel's other spelling of BUFFRED
)  # fmt: skip
async def test_a_stat_word_spelled_out_reads_as_the_word_it_spells(
    tmp_path: Path, stat: str, state: str, reason: str | None
) -> None:
    sink_port = free_port()
    async with HeldSMSC(message_id_format=lambda _id: "4720") as smsc, smtp_sink(sink_port) as sink:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            assert (await gw.send(mail(f"601700101@{DOMAIN}", "Spelled out"))).error is None
            await smsc.wait_until(lambda: len(smsc.held) == 1)
            smsc.answer()
            await gw.until(lambda: gw.states() == ["submitted"])
            smsc.send_raw(receipt("4720", stat))
            await gw.until(lambda: count(gw, "SELECT COUNT(*) FROM dlrs WHERE part_id IS NOT NULL") == 1)
            await gw.until(lambda: gw.states() == [state])
            if reason is None:
                assert count(gw, "SELECT COUNT(*) FROM outbox") == 0
                return
            await sink.wait(1)
    report = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
    human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    assert f"Reason: {reason}" in human, human


def test_a_stat_word_is_read_whole_in_the_wording() -> None:
    # Reasons stored before receipts read the spelled-out words, and words no table knows, alike.
    assert human_reason("part 1 of 2: UNDELIVERED err:001") == (
        f"part 1 of 2: {UNDELIVERED} (UNDELIVERED err:001)"
    )
    assert human_reason("UNDELIVX err:001") == "UNDELIVX err:001"  # no such word: kept as it came
    assert human_reason("UNDELIV err:001") == f"{UNDELIVERED} (UNDELIV err:001)"  # as before
