"""What changes between RCPT and the end of DATA is looked at again in the accepting write
(gateway/smtp/latechecks.py): a number's last identical SMS made by another session, a STOP, an
account admin's own opt-out, an admin's lower limit.

Real SMTP sessions held open mid-transaction against the relay port, a fake SMSC over TCP (its MO
is the phone's STOP), the CLI run as a process on the same SQLite file, and a second SQLite client
holding the write lock so that two mails are composed before either is written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

from gateway.config import load_config
from tests.conftest import DOMAIN, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_cli_errors import run
from tests.test_relay_network_removed import BOB, Session, beta_config

P, Q1, Q2 = "+48601700001", "+48601700002", "+48601700003"


def local(number: str) -> str:
    return number[3:]


def up_to_rcpt(port: int, numbers: list[str]) -> Session:
    s = Session(port, "127.0.0.3")
    assert s.cmd(f"MAIL FROM:<{BOB}>").startswith("250")
    for n in numbers:
        assert s.cmd(f"RCPT TO:<{local(n)}@{DOMAIN}>").startswith("250")
    return s


def data(s: Session, text: str) -> str:
    assert s.cmd("DATA").startswith("354")
    s.body(text)
    return s.cmd(".")


def monthly_used(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT SUM(parts) FROM usage WHERE scope LIKE 'user:%' AND length(period) = 7")
    return int(row.fetchone()[0])


def subjects(conn: sqlite3.Connection, kind: str) -> list[str]:
    rows = conn.execute("SELECT content FROM outbox WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [str(make_header(decode_header(message_from_bytes(r[0])["Subject"]))) for r in rows]


def bodies(conn: sqlite3.Connection, kind: str) -> list[str]:
    rows = conn.execute("SELECT content FROM outbox WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    out = []
    for (raw,) in rows:
        msg = message_from_bytes(raw)
        part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
        out.append(part.get_payload(decode=True).decode())
    return out


async def test_a_group_mail_whose_number_got_its_last_identical_sms_meanwhile_goes_to_the_others(
    tmp_path: Path,
) -> None:
    # P has had 2 identical SMS today. Two group mails with that text, [P, Q1] and [P, Q2], are both
    # composed (each sees 2: P stays in) before either is written; the second write finds P at 3.
    # A sequential send leaves P out with a 250 (R-2.4), so must this one: no 550 bouncing Q2's SMS.
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            for _ in range(2):
                s = await asyncio.to_thread(up_to_rcpt, gw.port, [P])
                assert (await asyncio.to_thread(data, s, "same text")).startswith("250"), "earlier SMS"
                s.close()
            a = await asyncio.to_thread(up_to_rcpt, gw.port, [P, Q1])
            b = await asyncio.to_thread(up_to_rcpt, gw.port, [P, Q2])
            for s in (a, b):
                assert (await asyncio.to_thread(s.cmd, "DATA")).startswith("354")
                s.body("same text")
            lock = sqlite3.connect(gw.store.path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # the writes wait; the composes (reads) go on
            try:
                for s in (a, b):
                    s.sock.sendall(b".\r\n")
                await asyncio.sleep(0.5)  # both composed, both writes waiting for the lock
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            said = await asyncio.gather(asyncio.to_thread(a.reply), asyncio.to_thread(b.reply))
            assert all(r.startswith("250 2.0.0 OK") for r in said), said
            for s in (a, b):
                s.close()
            await smsc.wait_for(5)
            await asyncio.sleep(0.3)
            conn = sqlite3.connect(gw.store.path)
            told = subjects(conn, "not-sent")
            text = bodies(conn, "not-sent")
            used = monthly_used(conn)
        got = sorted(s.destination for s in smsc.received)
        assert got == sorted([P, P, P, Q1, Q2]), got  # P's third identical SMS, and both others
        assert told == [f"Not sent as SMS to {P}: net"], told
        assert "but not to " + P in text[0] and "more than 3 identical SMS" in text[0], text
        assert used == 5  # the parts sent: P's left-out one is not charged


async def test_a_stop_between_rcpt_and_data_leaves_the_number_out(tmp_path: Path) -> None:
    # The phone's STOP comes after RCPT let P in: sent anyway, bounced as opted out "after this mail
    # was accepted" (untrue: before its 250) and charged. Now as RCPT would have answered: P alone
    # is refused with the opt-out reply, a group mail goes to the others and its sender is told.
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            first = await asyncio.to_thread(up_to_rcpt, gw.port, [P])  # P has had an SMS from us
            assert (await asyncio.to_thread(data, first, "hello")).startswith("250")
            first.close()
            await smsc.wait_for(1)
            alone = await asyncio.to_thread(up_to_rcpt, gw.port, [P])
            group = await asyncio.to_thread(up_to_rcpt, gw.port, [P, Q1])
            await smsc.inject_mo(P, "+48100200300", "STOP")
            for _ in range(100):
                if gw.store.policy.is_opted_out(P):
                    break
                await asyncio.sleep(0.05)
            assert gw.store.policy.is_opted_out(P)
            refused = await asyncio.to_thread(data, alone, "after stop")
            taken = await asyncio.to_thread(data, group, "after stop")
            assert refused.startswith(f"550 5.7.1 <{local(P)}@{DOMAIN}>: "), refused
            assert "opted out" in refused, refused
            assert taken.startswith("250 2.0.0 OK"), taken
            for s in (alone, group):
                s.close()
            await smsc.wait_for(2)
            await asyncio.sleep(0.5)
            conn = sqlite3.connect(gw.store.path)
            told = subjects(conn, "not-sent")
            rows = conn.execute("SELECT recipient FROM messages WHERE text LIKE '%after stop'").fetchall()
            used = monthly_used(conn)
        assert [s.destination for s in smsc.received] == [P, Q1]
        assert rows == [(Q1,)]
        assert told == [f"Not sent as SMS to {P}: net"], told
        assert used == 2  # "hello" to P and Q1's SMS


async def test_an_account_admins_opt_out_between_rcpt_and_data_is_seen_by_the_write(tmp_path: Path) -> None:
    # The panel's own list of an account (no trigger of its own): the write reads it from the
    # settings cache, which its verb empties.
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            warm = await asyncio.to_thread(up_to_rcpt, gw.port, [Q2])  # the cache filled before
            assert (await asyncio.to_thread(data, warm, "warm")).startswith("250")
            warm.close()
            s = await asyncio.to_thread(up_to_rcpt, gw.port, [P])
            beta = gw.store.accounts.get_account("beta")
            await gw.store.write(lambda: gw.store.policy.add_account_optout(beta.id, P))
            said = await asyncio.to_thread(data, s, "listed")
            s.close()
            assert said.startswith(
                f"550 5.7.1 <{local(P)}@{DOMAIN}>: recipient has opted out of SMS from this account"
            ), said
            await smsc.wait_for(1)
            await asyncio.sleep(0.3)
        assert [m.destination for m in smsc.received] == [Q2]


async def test_a_limit_lowered_between_mail_and_data_is_the_one_the_write_checks(tmp_path: Path) -> None:
    # Three sessions past RCPT, then `smsgw user set --monthly-limit 2`: the limit read at MAIL was
    # none, and all three were taken (3 parts against a limit of 2). The write reads it again.
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            sessions = [await asyncio.to_thread(up_to_rcpt, gw.port, [n]) for n in (P, Q1, Q2)]
            res = await asyncio.to_thread(run, config, "user", "set", BOB, "--monthly-limit", "2")
            assert res.returncode == 0, res.stderr
            said = [await asyncio.to_thread(data, s, f"limit {i}") for i, s in enumerate(sessions)]
            for s in sessions:
                s.close()
            assert [r[:3] for r in said] == ["250", "250", "550"], said
            assert said[2].startswith(f"550 5.7.1 Monthly limit of user {BOB}: 2 parts, used 2"), said[2]
            await smsc.wait_for(2)
            await asyncio.sleep(0.3)
            conn = sqlite3.connect(gw.store.path)
            used = monthly_used(conn)
        assert used == 2
        assert sorted(m.destination for m in smsc.received) == [P, Q1]
