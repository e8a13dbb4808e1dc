"""The late part of a long answer over CIMD2 that the phone sent apart from the others (R-3.4): a
part whose 060 stamp is 30 s to 5 minutes after its SMS's first parts, delivered after the timeout
mailed those with a gap, is the rest of that answer, mailed as its late part in the same thread.

Defect: while its SMS waited, such a part joined it (`segmentsets.PARTS_SENT_APART_SECONDS`), but
once the SMS had been mailed the late-part rule took only a part stamped within 30 s of it: the
part went out as an answer of its own, with no word of which SMS it completes, to whoever had
texted the phone since. The daemon runs against a scripted CIMD2 SMSC over TCP with its clock ahead
of the real one.
"""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS, gap
from smsc.cimd2.packet import Op, P, Packet, encode
from tests.conftest import DOMAIN, STAFF, Running, Sink, mail
from tests.test_cimd2_report_keys import Operator, gateway_and_smsc
from tests.test_mo_redelivery import PHONE, SENDER

BOB = "bob@acme.example"
FIRST = "Tak, bedziemy o dziesiatej, ale prosze przygotowac sale na pietrze, bo na dole jest remont"
SECOND = " i kawe dla wszystkich."


def part(number: int, seq: int, text: str, stamp: str) -> Packet:
    """Part `seq` of 2 of the phone's answer under reference 0x31, as the SMSC delivers it."""
    return Packet.make(Op.DELIVER, number, (P.DESTINATION, SENDER), (P.ORIGINATOR, PHONE), (P.SCTS, stamp),
                       (P.UDH, f"0500033102{seq:02X}"), (P.USER_DATA, text))  # fmt: skip


def body(sink: Sink, i: int) -> tuple[EmailMessage, str]:
    msg = message_from_bytes(sink.messages[i][2], policy=policy.default)
    assert isinstance(msg, EmailMessage)
    plain = msg.get_body(("plain",))
    assert plain is not None
    return msg, plain.get_content()


async def texted(gw: Running, operator: Operator, sender: str, n: int) -> None:
    """`sender` mails the phone; the SMSC takes it as the `n`-th SMS."""
    msg = mail(f"{PHONE}@{DOMAIN}", "Kiedy?", subject="Meeting")
    msg.replace_header("From", sender)
    await gw.send(msg, sender=sender)
    await operator.until_submits(n)
    sent = "SELECT COUNT(*) FROM messages WHERE state = 'submitted'"
    await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == n)


async def timed_out(gw: Running, ahead: list[float], whole: int) -> None:
    """The part just delivered stored, the reassembly timeout passes: the housekeeping joins what
    waited, `whole` texts stored then."""
    waiting = "SELECT COUNT(*) FROM mo WHERE state = 'segment'"
    await gw.until(lambda: gw.store.db.conn.execute(waiting).fetchone()[0] == 1)
    ahead[0] += TIMEOUT_SECONDS + 1
    await gw.daemon.housekeeping.expire()
    found = "SELECT COUNT(*) FROM mo WHERE state != 'segment' AND state != 'joined'"
    await gw.until(lambda: gw.store.db.conn.execute(found).fetchone()[0] == whole)


def stamp(seconds: int) -> str:
    """The 060 stamp `seconds` after 12:00:00 on a fixed day: the stamps are compared only with each
    other, never with the clock."""
    return f"26120612{seconds // 60:02d}{seconds % 60:02d}"


async def answered_in_two(
    tmp_path: Path, first_seq: int, late_seq: int, apart: int
) -> tuple[Sink, list[tuple[int, int | None]]]:
    """Anna's SMS answered in two parts: part `first_seq` came and the timeout mailed it to her; Bob
    texted the phone; then part `late_seq`, which the phone sent `apart` seconds after the first, and
    the timeout again. The sink of its mails, and the whole texts' (id, follows)."""
    ahead = [0.0]
    texts = {1: FIRST, 2: SECOND}

    def clock() -> float:  # ahead of the real one by `ahead[0]` s
        return time.time() + ahead[0]

    async with gateway_and_smsc(tmp_path, clock=clock, users=(STAFF, BOB)) as (gw, operator, sink):
        conn = operator.conn
        await texted(gw, operator, STAFF, 1)
        conn.send(encode(part(2, first_seq, texts[first_seq], stamp(0))))
        await timed_out(gw, ahead, 1)
        await sink.wait(1)  # Anna's answer, with a gap where the other part stands
        ahead[0] += 60
        await texted(gw, operator, BOB, 2)  # Bob texts the phone since: new answers are his
        ahead[0] += 10  # ... once the phone has had it a while: none is answered within 5 s of going
        conn.send(encode(part(4, late_seq, texts[late_seq], stamp(apart))))
        await timed_out(gw, ahead, 2)
        await sink.wait(2)
        whole = "SELECT id, follows FROM mo WHERE state NOT IN ('segment', 'joined') ORDER BY id"
        return sink, gw.store.db.conn.execute(whole).fetchall()


@pytest.mark.parametrize("apart", [0, 90, 240])
async def test_a_part_the_phone_sent_apart_that_came_after_its_answer_was_mailed_is_its_late_part(
    tmp_path: Path, apart: int
) -> None:
    sink, [(answer, _), (_, follows)] = await answered_in_two(tmp_path, 1, 2, apart)
    (first, first_text), (late, late_text) = body(sink, 0), body(sink, 1)
    assert first_text.startswith(f"{FIRST} {gap(2, 2, 2)}")
    assert [m[1] for m in sink.messages] == [[STAFF], [STAFF]]  # before the fix: to Bob
    assert late_text.startswith(f"{gap(1, 1, 2)} {SECOND}") and "came late" in late_text
    assert late["In-Reply-To"] == first["In-Reply-To"] and late["References"] == first["References"]
    assert follows == answer


@pytest.mark.parametrize(
    ("first_seq", "late_seq", "apart"),
    [(1, 2, 360), (2, 1, 90)],
    ids=["sent after its timeout", "part 1 sent after part 2"],
)
async def test_a_part_the_phone_sent_apart_beyond_its_sms_is_a_new_answer(
    tmp_path: Path, first_seq: int, late_seq: int, apart: int
) -> None:
    # A new SMS under the reused reference, whose other part was lost: no part of the one mailed.
    sink, [_, (_, follows)] = await answered_in_two(tmp_path, first_seq, late_seq, apart)
    assert [m[1] for m in sink.messages] == [[STAFF], [BOB]]
    assert follows is None and "came late" not in body(sink, 1)[1]
