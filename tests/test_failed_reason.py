"""The stored reason of a failed long SMS says what finally became of its parts.

A real SMTP client mails the running gateway a 2-part text, an SMPP fake over TCP holds both submits
and answers them one at a time (so that part 2 is on the wire when part 1 fails), the bounce is
caught at a real SMTP sink, and the reason is read from the SQLite file and from `smsgw queue list`
(a separate process on the same store). The bounce, written when part 1 failed, rightly says part 2
was being sent; the reason kept for the queue list, the panel and the billing file said so for good,
weeks after part 2 had failed too or been delivered.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from gateway.config import Config, parse_config
from smsc.encoding import parse_udh
from smsc.simulator.core import SubmitVerdict
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, Running, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_quiet_hours_view import queue_line

TEXT = ("Please confirm the delivery window for tomorrow morning. " * 4)[:200].strip()  # 2 GSM parts
REFUSED = "+48601120000"  # reject_suffixes "0000": the SMSC refuses it at submit, ESME_RINVDSTADR
ESME_RINVDSTADR = 0x0B
# What the bounce says, written when part 1 failed: where part 2 was then.
BOUNCED = (
    "Reason: part 1 of 2: the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)"
    " (part 2 being sent)"
)
Held = dict[int, tuple[SmppSession, int, SubmitVerdict]]


def mailing_config(tmp_path: Path, smsc_port: int, relay_port: int) -> tuple[Path, Config]:
    """The config as a file too (`smsgw queue list` is another process), mailing to the sink."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, relay_port=relay_port))
    return path, parse_config(path.read_text(), source=str(path), base_dir=tmp_path)


async def both_parts_held(gw: Running, smsc: HeldSMSC, number: str) -> Held:
    """Mail the 2-part text to `number`; its submits, by part number, once both are at the SMSC."""
    res = await gw.send(mail(f"{number.removeprefix('+48')}@{DOMAIN}", TEXT))
    assert res.error is None and res.refused == {}
    await smsc.wait_for(2)
    concats = [parse_udh(sms.udh) for sms in smsc.received]
    seqs = [c.seq for c in concats if c is not None]
    assert sorted(seqs) == [1, 2]
    return dict(zip(seqs, smsc.held, strict=True))  # held in the order received


def answer(held: Held, seq: int, *, status: int | None = None) -> None:
    """Answer part `seq`'s submit: the SMSC's own verdict (and its receipt), or a refusal `status`."""
    session, pdu_seq, verdict = held[seq]
    session.answer_submit(pdu_seq, verdict, status=status)


# How `queue list` words the SMSC's code (gateway/reasons.py), as `queue show` and the panel do.
INVALID = "the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)"


async def part_1_fails_then_part_2_ends(gw: Running, held: Held, part_2: str) -> None:
    """Part 1 is refused while part 2 is on the wire; then part 2 is answered and ends `part_2`."""
    answer(held, 1, status=ESME_RINVDSTADR)
    await gw.until(lambda: gw.states() == ["failed"])
    answer(held, 2)
    await gw.until(lambda: part_states(gw) == ["failed", part_2])


def part_states(gw: Running) -> list[str]:
    return [r[0] for r in gw.store.db.conn.execute("SELECT state FROM parts ORDER BY seq")]


def stored(gw: Running) -> tuple[str, str]:
    """The message's state and reason in the SQLite file, and its bounces queued."""
    state, reason = gw.store.db.conn.execute("SELECT state, reason FROM messages").fetchone()
    (bounces,) = gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()
    assert bounces == 1  # one bounce per message, also when its second part fails
    return state, reason


def bounce_reason(sink: Sink) -> str:
    """The `Reason:` line of the one bounce the sink caught."""
    [(_from, _rcpts, content)] = sink.messages
    report = email.message_from_bytes(content, policy=policy.default)
    human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    return next(line for line in human.splitlines() if line.startswith("Reason: "))


async def test_both_parts_refused_keep_a_reason_naming_both(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HeldSMSC(reject_suffixes=["0000"]) as smsc, smtp_sink(sink_port) as sink:
        path, cfg = mailing_config(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            held = await both_parts_held(gw, smsc, REFUSED)
            await part_1_fails_then_part_2_ends(gw, held, "failed")
            said = "part 1 of 2: ESME_RINVDSTADR (0x0B); part 2 of 2: ESME_RINVDSTADR (0x0B)"
            assert stored(gw) == ("failed", said)
            line = await queue_line(path, REFUSED)
            worded = said.replace("ESME_RINVDSTADR (0x0B)", INVALID)  # `queue list` words the code
            assert " failed " in line and line.endswith(f"({worded})"), line
            await sink.wait(1)
    assert bounce_reason(sink) == BOUNCED


async def test_part_1_refused_and_part_2_delivered_says_so(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HeldSMSC() as smsc, smtp_sink(sink_port) as sink:
        path, cfg = mailing_config(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            held = await both_parts_held(gw, smsc, "+48601123456")
            await part_1_fails_then_part_2_ends(gw, held, "delivered")
            said = "part 1 of 2: ESME_RINVDSTADR (0x0B) (part 2 delivered)"
            assert stored(gw) == ("failed", said)
            line = await queue_line(path, "+48601123456")
            worded = said.replace("ESME_RINVDSTADR (0x0B)", INVALID)
            assert " failed " in line and line.endswith(f"({worded})"), line
            await sink.wait(1)
    assert bounce_reason(sink) == BOUNCED
