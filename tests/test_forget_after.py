"""After `smsgw phone forget`: an erased SMS is never sent again, and a late receipt writes nothing back.

An erased SMS keeps its parts with the marker and an empty payload: `smsgw queue retry` and the
panel's Retry queued them, to be sent (and billed) to the phone that asked to be forgotten. And a
real SMSC's receipt quotes the SMS's first 20 characters (`text:`): one arriving after the erasure
was stored with them. Real peers: the running daemon, `smsgw` as another process on the same SQLite
file, an SMPP SMSC sending hand-made receipts, the panel on the daemon's store.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.config import parse_config
from gateway.privacy.repo import ERASED
from smsc.cimd2.messages import parse_report
from smsc.cimd2.packet import Op, P, Packet
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import DOMAIN, Running, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_phone_privacy import cli
from tests.test_two_way import PHONE
from tests.web_helpers import OPERATOR, as_user, csrf_of, password_hash, web_context

BODYWORD = "Trescikowo"  # found nowhere else: in the SMS, and in the receipt's quote of it
TEXT = f"Tekst {BODYWORD} na jutro"


def parts(conn: sqlite3.Connection, message_id: int) -> list[tuple[str, bytes]]:
    return conn.execute("SELECT state, payload FROM parts WHERE message_id = ?", (message_id,)).fetchall()


@asynccontextmanager
async def forgotten(tmp_path: Path) -> AsyncIterator[tuple[Path, Running, int]]:
    """A running daemon whose one SMS was cancelled, then its phone forgotten, both by `smsgw`.
    No SMSC listens: the SMS waits until it is cancelled."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", TEXT))).error is None
        await gw.until(lambda: conn.execute("SELECT COUNT(*) FROM messages").fetchone() == (1,))
        (mid,) = conn.execute("SELECT id FROM messages").fetchone()
        assert (r := await cli(path, "queue", "cancel", str(mid))).returncode == 0, r.stderr
        assert (r := await cli(path, "phone", "forget", PHONE, "--yes")).returncode == 0, r.stderr
        assert parts(conn, mid) == [("cancelled", b"")]
        yield path, gw, mid


def retries(conn: sqlite3.Connection) -> tuple[int]:
    return conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'message.retry'").fetchone()


async def test_queue_retry_refuses_an_erased_sms(tmp_path: Path) -> None:
    async with forgotten(tmp_path) as (path, gw, mid):
        conn = gw.store.db.conn
        retried = await cli(path, "queue", "retry", str(mid))
        after = parts(conn, mid)
        state = conn.execute("SELECT state, text FROM messages WHERE id = ?", (mid,)).fetchone()
        audited = retries(conn)
    # Refused as a retry of a number refused for good is: exit 1, the reason in words.
    assert retried.returncode == 1, (retried.stdout, retried.stderr)
    assert f"message {mid} is not sent again: its text was erased at the phone's request" in retried.stderr
    assert after == [("cancelled", b"")] and state == ("cancelled", ERASED)
    assert audited == (0,)


async def test_panel_retry_of_an_erased_sms_is_refused(tmp_path: Path) -> None:
    async with forgotten(tmp_path) as (_, gw, mid):
        store = gw.store
        conn = store.db.conn

        def operator() -> None:
            store.accounts.add_user(OPERATOR, "acme", password_hash=password_hash())
            store.accounts.set_user(OPERATOR, role="operator")

        await store.write(operator)
        (tmp_path / "panel").mkdir()
        web = web_context(tmp_path / "panel", store)  # the panel on the daemon's store
        try:
            async with as_user(web, OPERATOR) as c:
                page = (await c.get(f"/messages/{mid}")).text
                shown = f"/messages/{mid}/retry" in page
                # A form shown before the erasure still posts: refused with the words.
                r = await c.post(f"/messages/{mid}/retry", data={"csrf": csrf_of(page)})
        finally:
            web.counts.close()
        after, audited = parts(conn, mid), retries(conn)
    assert not shown  # no Retry button for it
    assert r.status_code == 409, r.status_code
    assert "not sent again: its text was erased at the phone&#39;s request" in r.text
    assert after == [("cancelled", b"")] and audited == (0,)


def receipt(smsc_id: str, seq: int) -> bytes:
    """A receipt as a real SMSC writes it: SMPP 3.4 appendix B, quoting the SMS's first 20 characters."""
    text = (
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:2612031200 done date:2612031201"
        f" stat:DELIVRD err:000 text:{TEXT[:20]}"
    )
    return encode_sm(
        DELIVER_SM, seq, esm_class=0x04, source_addr="48601123456", source_addr_ton=1,
        destination_addr="48100200300", short_message=text.encode(),
    )  # fmt: skip


async def test_a_receipt_after_forget_is_stored_without_the_text(tmp_path: Path) -> None:
    # The SMSC's own receipt would come in an hour: the test's hand-made one comes after the forget.
    async with HappySMSC(dlr_delay_seconds=3600) as smsc:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            conn = gw.store.db.conn
            assert (await gw.send(mail(f"601123456@{DOMAIN}", TEXT))).error is None
            submitted = "SELECT smsc_id FROM parts WHERE state = 'submitted' AND smsc_id IS NOT NULL"
            await gw.until(lambda: conn.execute(submitted).fetchone() is not None)
            (smsc_id,) = conn.execute(submitted).fetchone()
            assert (r := await cli(path, "phone", "forget", PHONE, "--yes")).returncode == 0, r.stderr
            smsc.send_raw(receipt(smsc_id, 901))  # its own SMS's: matched
            smsc.send_raw(receipt("999999", 902))  # no SMS has the id: kept unmatched
            await gw.until(lambda: conn.execute("SELECT COUNT(*) FROM dlrs").fetchone() == (2,))
            await gw.until(lambda: gw.states() == ["delivered"])
            rows = conn.execute("SELECT smsc_id, part_id IS NOT NULL, raw FROM dlrs ORDER BY id").fetchall()
            await asyncio.sleep(0)
    assert [(r[0], r[1]) for r in rows] == [(smsc_id, 1), ("999999", 0)]
    for _, _, raw in rows:
        assert TEXT[:10] not in raw and BODYWORD[:4] not in raw, raw
        assert raw.endswith("stat:DELIVRD err:000 text:"), raw  # id, stat, err, dates: the diagnosis


def test_a_cimd2_status_report_keeps_no_quote_of_the_sms() -> None:
    # A CIMD2 status report may carry the SMS's text (033, protocols.md 1.9): its raw form did too.
    packet = Packet.make(
        Op.STATUS_REPORT, 5, (P.DESTINATION, "+48601123456"), (P.SCTS, "261201204345"),
        (P.USER_DATA, TEXT[:20]), (P.STATUS_CODE, 4),
    )  # fmt: skip
    report = parse_report(packet, link="op")
    assert not isinstance(report, str)
    assert report.raw == "021:+48601123456 060:261201204345 033: 061:4"
