"""Receipts that match no SMS, by the thousand: each was stored and logged `dlr.unmatched`, one line a
receipt (20,000 receipts, 20,000 lines), with ids of 30 KB kept whole. Now the first few lines a second
per link go out and the rest are counted, and an id longer than SMPP 3.4 allows makes the receipt
unreadable: acknowledged, logged as bad, never stored. The running daemon (its real SQLite file)
against a fake SMPP SMSC writing hand-made receipts over TCP."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.store.reports import RAW_KEPT, UNMATCHED_LINES
from smsc.logthrottle import LogThrottle
from smsc.smpp.codec import DELIVER_SM, MAX_MESSAGE_ID, encode_sm
from tests.conftest import Running, config_text, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_hostile_smsc import events, occurrences

FLOOD = 1000
TAG_RECEIPTED_MESSAGE_ID, TAG_MESSAGE_STATE, TAG_MESSAGE_PAYLOAD = 0x001E, 0x0427, 0x0424


def receipt(seq: int, receipted_id: bytes) -> bytes:
    """A receipt saying "delivered" in its TLVs alone, for an id no SMS was given."""
    body = encode_sm(DELIVER_SM, seq, esm_class=0x04, source_addr="48601123456", source_addr_ton=1,
                     destination_addr="48100200300")[16:]  # fmt: skip
    body += struct.pack(">HH", TAG_RECEIPTED_MESSAGE_ID, len(receipted_id)) + receipted_id
    body += struct.pack(">HHB", TAG_MESSAGE_STATE, 1, 2)
    return struct.pack(">IIII", 16 + len(body), DELIVER_SM, 0, seq) + body


@asynccontextmanager
async def daemon_and_smsc(tmp_path: Path) -> AsyncIterator[tuple[Running, HappySMSC]]:
    async with HappySMSC() as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await smsc.wait_until(lambda: bool(smsc.sessions), 20)
            yield gw, smsc


def stored(gw: Running) -> tuple[int, int | None]:
    return gw.store.db.conn.execute("SELECT COUNT(*), MAX(LENGTH(smsc_id)) FROM dlrs").fetchone()


async def test_a_flood_of_unmatched_receipts_is_a_few_log_lines_and_the_count(tmp_path: Path) -> None:
    with capture_logs() as logs:
        async with daemon_and_smsc(tmp_path) as (gw, smsc):
            smsc.send_raw(b"".join(receipt(1000 + n, b"%05d" % n + b"\0") for n in range(FLOOD)))
            await gw.until(lambda: stored(gw)[0] == FLOOD, 30)
            during = events(logs, "dlr.unmatched")
    lines = events(logs, "dlr.unmatched")
    # A few lines a second (the flood's length is the machine's: no bound but its own), and the count
    # of the rest once quiet or at the stop: every receipt is accounted for.
    assert UNMATCHED_LINES <= len(during) < FLOOD / 10, len(during)
    assert occurrences(lines) == FLOOD
    assert [e["smsc_id"] for e in lines[:2]] == ["0", "1"]  # "00000", "00001" as keys: each its own line


async def test_receipts_whose_id_is_longer_than_smpp_allows_are_not_stored(tmp_path: Path) -> None:
    # 2,000 receipts with a 30 KB receipted_message_id each added 60 MB to the database.
    with capture_logs() as logs:
        async with daemon_and_smsc(tmp_path) as (gw, smsc):
            overlong = b"".join(receipt(5000 + n, b"%05d" % n + b"Z" * 30_000 + b"\0") for n in range(20))
            smsc.send_raw(overlong + receipt(6000, b"A" * MAX_MESSAGE_ID + b"\0"))
            await smsc.wait_until(lambda: smsc.stats.commands["deliver_sm_resp"] == 21, 20)
            await gw.until(lambda: stored(gw)[0] >= 1)
            rows = stored(gw)
    assert rows == (1, MAX_MESSAGE_ID)  # only the one of 64 characters, SMPP's longest
    assert occurrences(events(logs, "smpp.bad_receipt")) == 20


async def test_a_receipt_text_padded_past_any_reason_is_stored_cut(tmp_path: Path) -> None:
    # A short, readable id and 60 KB of words outside `text:` in message_payload: the whole of it went
    # into dlrs.raw, the same growth as the long ids by another field.
    words = b"id:77777 sub:001 dlvrd:001 stat:DELIVRD err:000 " + b"pad:x " * 10_000
    body = encode_sm(DELIVER_SM, 7000, esm_class=0x04, source_addr="48601123456", source_addr_ton=1,
                     destination_addr="48100200300")[16:]  # fmt: skip
    body += struct.pack(">HH", TAG_MESSAGE_PAYLOAD, len(words)) + words
    async with daemon_and_smsc(tmp_path) as (gw, smsc):
        smsc.send_raw(struct.pack(">IIII", 16 + len(body), DELIVER_SM, 0, 7000) + body)
        await gw.until(lambda: stored(gw)[0] == 1, 20)
        [(smsc_id, raw)] = gw.store.db.conn.execute("SELECT smsc_id, raw FROM dlrs").fetchall()
    assert smsc_id == "77777"
    assert raw.startswith("id:77777 sub:001 dlvrd:001 stat:DELIVRD err:000 pad:x")
    assert len(raw) <= RAW_KEPT + 1 and raw.endswith("…")


def test_a_throttle_with_a_burst_says_that_many_lines_a_kind_per_interval_then_the_count() -> None:
    # The throttle behind `dlr.unmatched`: the first few of a kind within the interval, each whole.
    now = [0.0]
    with capture_logs() as logs:
        throttle = LogThrottle(structlog.get_logger("t"), interval=1.0, clock=lambda: now[0], burst=3)
        for n in range(10):
            throttle.info("x", kind="a", n=n)
        throttle.info("x", kind="b", n=99)  # another kind is not held back by the first's flood
        now[0] = 1.5
        throttle.info("x", kind="a", n=10)  # the next interval's first line says the 7 held back
        throttle.info("x", kind="a", n=11)
    assert [(e["n"], e["suppressed"]) for e in logs] == [(0, 0), (1, 0), (2, 0), (99, 0), (10, 7), (11, 0)]
