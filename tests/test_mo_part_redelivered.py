"""A part of a long MO that the SMSC delivers again is that SMS, not a new one: mailed once, billed once.

Over CIMD2 the SMSC's stamp (060) names the SMS: a part that comes again with its stamp, after our
answer to the first copy was read, is that part, whether its set was joined already or still waits
(`gateway.store.redelivery`). It was a new SMS: a second mail "[part 2 of 2 missing]" and a second
broken vote billed. A first part under a new packet number after the SMSC read our 70 to the one its
set still waits for is the phone's next SMS, paid for. Over SMPP, which has no stamp, a set of nothing
but parts joined already is the SMSC's copy, dropped at its join (`gateway.store.segmentrepeats`); a
set with a part of its own, or a late part its SMS lacked, is still mailed.

Against the daemon with its built-in simulator over TCP (each part sent as the SMSC's deliver, so
that one can be sent again as it was), a confirmed premium service, the relay's sink and the SQLite
file; the daemon's clock is moved, not slept.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.config import parse_config
from smsc.simulator.cimd2_texts import mo_params
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import Running, Sink, free_port, running_gateway, smtp_sink
from tests.test_mo_redelivery import CLIENT, confirmed_kp123, first_lines
from tests.test_premium_loop import premium_config

PHONE = "+48601123456"
TIMEOUT = 30.0  # `[replies] reassembly_timeout_seconds`
VOTE = "KP123 " + "long vote " * 20  # two parts
LONGER = "KP123 " + "glosuje na A, " * 25  # cut into three parts


class Phone:
    """The parts of one long SMS as the SMSC delivers them over the link `protocol`, under reference
    `ref` and (CIMD2) one stamp, the time it took the SMS: each can be sent again as it was."""

    def __init__(self, gw: Running, protocol: str, text: str, ref: int, parts: int | None = None) -> None:
        self.gw, self.protocol = gw, protocol
        self.session: Any = gw.daemon.simulator.core._pick(protocol)
        assert self.session is not None
        if protocol == "cimd2":
            taken = datetime.fromtimestamp(gw.store.clock(), UTC)
            self.parts: list[Any] = [tuple(p) for p in mo_params(PHONE, "7355", text, ref, taken, parts)]
        else:
            self.parts = [
                tuple(
                    dict(
                        address_fields(PHONE, "7355"), esm_class=esm, data_coding=dc, short_message=sm
                    ).items()
                )
                for esm, dc, sm in mo_parts(text, ref, parts)
            ]

    async def send(self, *seqs: int) -> None:
        """Parts `seqs` (from 1), each stored and its acknowledgement read by the SMSC before the next."""
        for seq in seqs:
            stored = rows(self.gw) + 1
            await self.session.send_part(self.parts[seq - 1])
            await self.gw.until(lambda n=stored: rows(self.gw) == n)
            await self.gw.until(lambda: newest_acked(self.gw))


def newest_acked(gw: Running) -> bool:
    """Whether the SMSC is known to have read the acknowledgement of the part stored last."""
    q = "SELECT acked_at IS NOT NULL FROM mo WHERE concat_seq IS NOT NULL ORDER BY id DESC LIMIT 1"
    return bool(gw.store.db.conn.execute(q).fetchone()[0])


def unconfirmed(gw: Running, seq: int) -> None:
    """Part `seq`'s acknowledgement as the daemon records one whose connection ended before the SMSC
    answered anything written after it: not known to have been read (the simulator reads them all)."""
    with gw.store.db.conn as db:
        db.execute("UPDATE mo SET acked_at = NULL WHERE concat_seq = ?", (seq,))


def rows(gw: Running) -> int:
    """The MOs stored that answer a delivery of the SMSC (a whole text joined from parts is none)."""
    return int(gw.store.db.conn.execute("SELECT COUNT(*) FROM mo WHERE concat_seq IS NOT NULL").fetchone()[0])


@asynccontextmanager
async def gateway(
    tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Running, Sink, list[float]]]:
    """The daemon on its simulator's `protocol` link, KP123 of acme confirmed on 7355, the reassembly
    timeout `TIMEOUT`, its clock the list's one value (moved by the test), and the relay's sink."""
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [1_800_000_000.0]
    relay = free_port()
    path, _ = premium_config(tmp_path, protocol, relay)
    path.write_text(path.read_text() + f"\n[replies]\nreassembly_timeout_seconds = {int(TIMEOUT)}\n")
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        await confirmed_kp123(gw, path)
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick(protocol) is not None)
        yield gw, sink, now


async def timed_out(gw: Running, now: list[float]) -> None:
    """The reassembly timeout passed: nothing waits any more, and every mail went out."""
    now[0] += TIMEOUT + 1
    db = gw.store.db.conn
    await gw.until(lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == 0)
    await gw.until(lambda: db.execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()[0] == 0)
    await asyncio.sleep(0.3)


def premium_stats(gw: Running) -> tuple[int, int, int]:
    """Premium SMS, parts and grosze billed (a late rest of an SMS adds parts and money, no SMS)."""
    with closing(sqlite3.connect(gw.config.db_path, timeout=30)) as db:
        sms, parts, price = db.execute(
            "SELECT COUNT(*) FILTER (WHERE follows IS NULL), SUM(parts), SUM(price) FROM premium_mo"
        ).fetchone()
    return sms, parts or 0, price or 0


def votes(sink: Sink) -> list[str]:
    return first_lines(sink, CLIENT)


def again(gw: Running) -> int:
    """Parts recorded as delivered again."""
    q = "SELECT COUNT(*) FROM mo WHERE state = 'duplicate' AND concat_seq IS NOT NULL"
    return int(gw.store.db.conn.execute(q).fetchone()[0])


@pytest.mark.parametrize("protocol", ["cimd2", "smpp"])
async def test_a_part_delivered_again_after_its_set_was_joined_is_not_mailed_or_billed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # The vote was joined and mailed; 5 s on, past the 2 s after its acknowledgement was read, the
    # SMSC delivers part 1 again as it was (over CIMD2 with its 060). It was mailed as
    # "KP123 long vote ... [part 2 of 2 missing]" and billed: 2 SMS, 3 parts, 9.00 PLN.
    async with gateway(tmp_path, protocol, monkeypatch) as (gw, sink, now):
        phone = Phone(gw, protocol, VOTE, ref=77)
        await phone.send(1, 2)
        now[0] += 5
        await phone.send(1)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        assert len(votes(sink)) == 1 and "missing" not in votes(sink)[0]
        assert again(gw) == 1


@pytest.mark.parametrize("protocol", ["cimd2", "smpp"])
async def test_a_part_delivered_again_while_its_set_waits_is_one_vote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # Part 1, part 1 again 5 s later, then part 2: one SMS. The first copy of part 1 waited alone
    # and was mailed at the timeout as a second, broken vote. Over SMPP, which cannot tell a copy from
    # the phone's next part 1, with its acknowledgement read; over CIMD2 while the SMSC is not known to
    # have read our 70 (its write late): once it has, the part under a new packet number is the
    # phone's (the next test).
    async with gateway(tmp_path, protocol, monkeypatch) as (gw, sink, now):
        phone = Phone(gw, protocol, VOTE, ref=78)
        await phone.send(1)
        if protocol == "cimd2":
            unconfirmed(gw, seq=1)
        now[0] += 5
        await phone.send(1, 2)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        assert len(votes(sink)) == 1 and "missing" not in votes(sink)[0]


async def test_a_first_part_under_a_new_number_after_the_smsc_read_its_70_is_the_phones_next_vote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CIMD2: part 1, our 70 read by the SMSC; 5 s on part 1 again under the same 060 (a minute stamp)
    # but a new packet number, then part 2. The SMSC sends a request again under its number (`resent`,
    # one vote: `tests.test_cimd2_long_mo_minute_stamps`) and delivers no MO again whose 70 it read,
    # so this is the phone sending its vote again, its first part 1 paid for: the first vote mailed
    # with its gap, the second whole. The waiting part was dropped as a copy of the second vote's,
    # which the link had handed up without the stamp, and the phone's next vote 20 s on under a minute
    # stamp took a waiting first vote with it in the same way (one vote lost of two).
    async with gateway(tmp_path, "cimd2", monkeypatch) as (gw, sink, now):
        phone = Phone(gw, "cimd2", VOTE, ref=84)
        await phone.send(1)
        now[0] += 5
        await phone.send(1, 2)
        await timed_out(gw, now)
        assert premium_stats(gw) == (2, 3, 900)
        assert sorted("missing" in vote for vote in votes(sink)) == [False, True]
        assert again(gw) == 0


async def test_a_part_delivered_again_after_a_timed_out_join_is_dropped_and_the_late_part_still_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SMPP: parts 1 and 3 were mailed at the timeout; part 1 comes again (it was mailed once more,
    # "[parts 2–3 of 3 missing]", naming part 3 that had been mailed), then the part the SMS lacked,
    # which is still its late rest: mailed alone, billed for its own part. The SMSC delivers part 1
    # again because our answer to it is not known to have reached it (a part whose answer it read
    # is the phone's next SMS: `tests.test_smpp_long_vote_sent_again`).
    async with gateway(tmp_path, "smpp", monkeypatch) as (gw, sink, now):
        phone = Phone(gw, "smpp", LONGER, ref=79, parts=3)
        await phone.send(1, 3)
        unconfirmed(gw, seq=1)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        now[0] += 5
        await phone.send(1)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        assert len(votes(sink)) == 1
        assert again(gw) == 1
        await phone.send(2)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 3, 900)
        assert len(votes(sink)) == 2


async def test_a_set_delivered_again_whole_over_smpp_is_dropped_on_arrival(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both parts again, 1 s after the SMSC read our answers (its timeout ran out on another bind just
    # before): nothing of its own, the same SMS. Later, with the answers read, the same set is the
    # phone's next SMS (`tests.test_smpp_long_vote_sent_again`).
    async with gateway(tmp_path, "smpp", monkeypatch) as (gw, sink, now):
        phone = Phone(gw, "smpp", VOTE, ref=80)
        await phone.send(1, 2)
        now[0] += 1
        await phone.send(1, 2)
        assert again(gw) == 2  # on arrival, before any timeout
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        assert len(votes(sink)) == 1


async def test_a_repeated_first_part_with_a_new_rest_is_still_a_new_sms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A device sends every long SMS under one reference with the same first part: the next one,
    # a minute later, repeats part 1 and brings a part 2 of its own. A new SMS, mailed and billed.
    async with gateway(tmp_path, "smpp", monkeypatch) as (gw, sink, now):
        first = Phone(gw, "smpp", VOTE, ref=81)
        await first.send(1, 2)
        now[0] += 60
        second = Phone(gw, "smpp", VOTE[:153] + "another ending", ref=81)
        assert second.parts[0] == first.parts[0]
        await second.send(1, 2)
        await timed_out(gw, now)
        assert premium_stats(gw) == (2, 4, 1200)
        assert len(votes(sink)) == 2 and again(gw) == 0


async def test_a_whole_long_text_sent_again_later_under_the_same_reference_is_mailed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cheap modem sends every SMS under one reference; its alarm, a long text, comes again ten
    # minutes on, every part alike. Without a stamp of the SMSC it cannot be told from a delivery
    # again, and a text sent again must not be lost: past WHOLE_AGAIN_SECONDS a whole set is a new SMS.
    async with gateway(tmp_path, "smpp", monkeypatch) as (gw, sink, now):
        phone = Phone(gw, "smpp", VOTE, ref=82)
        await phone.send(1, 2)
        now[0] += 600
        await phone.send(1, 2)
        await timed_out(gw, now)
        assert again(gw) == 0
        assert premium_stats(gw) == (2, 4, 1200)
        assert len(votes(sink)) == 2


async def test_a_part_delivered_again_with_the_missing_part_waiting_beside_it_still_lets_that_part_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SMPP: parts 1 and 3 were mailed at the timeout; minutes later the SMSC delivers part 1 again
    # (its acknowledgement lost in a reconnect) and then the missing part 2, both within one
    # timeout. The two waited as one set, which was mailed as a new SMS, "part 1 part 2 [part 3 of 3
    # missing]": part 1 mailed twice, part 3 (mailed) said to be missing, and billed again. The copy
    # is dropped and part 2 is the SMS's late rest, mailed alone.
    async with gateway(tmp_path, "smpp", monkeypatch) as (gw, sink, now):
        phone = Phone(gw, "smpp", LONGER, ref=83, parts=3)
        await phone.send(1, 3)
        await timed_out(gw, now)
        assert premium_stats(gw) == (1, 2, 600)
        now[0] += 300
        await phone.send(1, 2)
        await timed_out(gw, now)
        assert again(gw) == 1
        assert premium_stats(gw) == (1, 3, 900)
        assert len(votes(sink)) == 2
        conn = gw.store.db.conn
        late = conn.execute("SELECT seqs, follows FROM mo WHERE concat_ref = 83 AND seqs = '2'").fetchall()
        assert len(late) == 1 and late[0][1] is not None  # part 2 alone, following the SMS
