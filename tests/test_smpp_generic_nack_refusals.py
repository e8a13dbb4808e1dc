"""An SMSC that refuses a submit with a generic_nack instead of its submit_sm_resp.

The link keeps such a refusal as `generic_nack ESME_RINVDSTADR (0x0B)` (`smsc.smpp.submits`), and
`gateway.reasons` read only a reason that began with the status's name: the bounce quoted the raw code
with "the phone may be off … try again later" and 5.0.0 where the same refusal in a submit_sm_resp said
"the operator refused the number as invalid" with 5.1.1; `smsgw queue retry` sent a part refused for
good again, and the user got a second bounce; a part refused for the time being until it expired
bounced as never sent, "send it again". The statuses that say the SMSC could not read our PDU
(0x02, 0x03, 0xC0–0xC4) had no words at all.

Real peers: the daemon in this process, mail by a real SMTP client, an SMPP fake on the simulator's
server over TCP answering generic_nack, a real SMTP server taking the bounces, the CLI on the database.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.bounce import _status
from gateway.bouncewords import OPERATOR_REFUSED_ADVICE
from gateway.config import parse_config
from gateway.reasons import human_reason, refused_for_good, smsc_code
from gateway.store.db import Store
from gateway.store.partnotes import REFUSED_EXPIRED
from gateway.wording import BOUNCE_ADVICE
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from smsc.smpp.pdu import status_text
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_account_show import CLI
from tests.test_dsn_causes import dsn_mails, fields_of, refused_until_expired, text_part

ESME_RINVMSGLEN, ESME_RINVCMDID, ESME_RSYSERR, ESME_RINVDSTADR = 0x01, 0x03, 0x08, 0x0B
# Number suffix → the status of the generic_nack its submit gets.
NACKED = {"3542": ESME_RINVMSGLEN, "3543": ESME_RINVCMDID, "3544": ESME_RINVDSTADR}
UNREADABLE = "the operator could not read the message as the gateway sent it"


class NackingSMSC(FakeSMSC):
    """Answers a submit to a number in `NACKED` with a generic_nack of its status, any other submit
    ESME_RSYSERR in a generic_nack (a refusal for the time being)."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.nack(seq, NACKED.get(sms.destination[-4:], ESME_RSYSERR))


def test_a_refusal_in_a_generic_nack_reads_as_the_same_refusal_in_a_submit_sm_resp() -> None:
    nacked = "generic_nack ESME_RINVDSTADR (0x0B)"
    assert (
        human_reason(nacked)
        == "the operator refused the number as invalid (generic_nack ESME_RINVDSTADR, 0x0B)"
    )
    assert human_reason(f"part 2 of 3: {nacked}", "pl") == (
        "część 2 z 3: operator odrzucił numer jako nieprawidłowy (generic_nack ESME_RINVDSTADR, 0x0B)"
    )
    assert smsc_code(nacked) == "ESME_RINVDSTADR" and _status("failed", nacked) == "5.1.1"
    assert refused_for_good(nacked) == f"the SMSC refused it for good: {human_reason(nacked)}"
    assert refused_for_good("generic_nack ESME_RINVMSGLEN (0x01)") is not None
    # A system error or a throttle in a generic_nack is for the time being, as in a submit_sm_resp.
    for temporary in ("generic_nack ESME_RSYSERR (0x08)", "generic_nack ESME_RTHROTTLED (0x58)"):
        assert refused_for_good(temporary) is None and _status("failed", temporary) == "5.0.0"


@pytest.mark.parametrize("status", [0x02, 0x03, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4])
def test_an_smsc_that_could_not_read_our_pdu_is_said_in_words(status: int) -> None:
    code = status_text(status)
    name = code.split()[0]
    assert human_reason(code) == f"{UNREADABLE} ({name}, 0x{status:02X})"
    assert human_reason(f"generic_nack {code}", "pl").startswith("operator nie zdołał odczytać wiadomości")


def bounce_to(reports: list[EmailMessage], number: str) -> tuple[str, str]:
    """The Status and the text a person reads of the bounce for `number`."""
    for report in reports:
        _per_message, fields = fields_of(report)
        if number in str(fields["Final-Recipient"]):
            return str(fields["Status"]), text_part(report)[1]
    raise AssertionError(f"no bounce for {number}")


async def test_refusals_in_a_generic_nack_bounce_in_words_and_are_not_sent_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink_port = free_port()
    numbers = [f"60112{suffix}" for suffix in NACKED]
    async with NackingSMSC() as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        config = tmp_path / "config.toml"
        config.write_text(text)
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            for number in numbers:
                assert (await gw.send(mail(f"{number}@{DOMAIN}", "Gate code 4711"))).error is None
            await gw.until(lambda: gw.states() == ["failed"] * 3)
            await sink.wait(3, timeout=30)
        assert len(smsc.received) == 3  # each refused for good at its first submit
    reports = [report for _raw, report in dsn_mails(sink)]
    msglen, cmdid, dstadr = (bounce_to(reports, number) for number in numbers)
    assert dstadr[0] == "5.1.1"
    assert "the operator refused the number as invalid (generic_nack ESME_RINVDSTADR, 0x0B)" in dstadr[1]
    assert BOUNCE_ADVICE["number"]("en") in dstadr[1]
    assert msglen[0] == "5.0.0"
    assert "the operator refused the length of the text (generic_nack ESME_RINVMSGLEN, 0x01)" in msglen[1]
    assert f"{UNREADABLE} (generic_nack ESME_RINVCMDID, 0x03)" in cmdid[1]
    # An admin's retry of a part refused for good is refused: it would be refused again, and bounce again.
    store = Store.open(cfg.db_path)
    try:
        ids = dict(store.db.conn.execute("SELECT recipient, id FROM messages").fetchall())
        dsns = store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()[0]
    finally:
        store.close()
    cli = CLI(config, capsys)
    for number in numbers:
        code, _out, err = cli("queue", "retry", str(ids[f"+48{number}"]))
        assert code == 1 and "refused it for good" in err and "generic_nack" in err, err
    store = Store.open(cfg.db_path)
    try:
        states = {r[0] for r in store.db.conn.execute("SELECT state FROM parts")}
        after = store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()[0]
    finally:
        store.close()
    assert states == {"failed"} and after == dsns


async def test_a_part_refused_for_the_time_being_by_generic_nack_until_it_expired_bounces_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It bounced as "validity period expired before it could be sent … send it again", into the same fault.
    report, error = await refused_until_expired(tmp_path, monkeypatch, NackingSMSC)
    assert error == f"{REFUSED_EXPIRED}generic_nack ESME_RSYSERR (0x08)"
    _per_message, fields = fields_of(report)
    assert fields["Status"] == "5.4.7"
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; generic_nack ESME_RSYSERR (0x08)"
    _encoding, text = text_part(report)
    assert "its last answer: the operator's system failed (generic_nack ESME_RSYSERR, 0x08)" in text, text
    assert OPERATOR_REFUSED_ADVICE("en") in text and "before it could be sent" not in text
