"""A relay network taken off its account while mail from it is under way: the mail is refused at the
end of DATA, as a user removed meanwhile is (README, *Who may send*), not queued and sent.

Real SMTP sessions from beta's mail server (127.0.0.3) held open mid-transaction against the relay
port, the CLI run as a process on the same SQLite file, a fake SMSC over TCP that counts what
reaches it; once with the daemon's own relay port, once through an intake worker process.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from gateway.config import load_config
from gateway.smtp.accept import NETWORK_GONE
from tests.conftest import DOMAIN, config_text, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_cli_errors import run, write_config
from tests.test_intake_workers import stop, worker_config_text
from tests.test_process import start_daemon

BOB = "bob@beta.example"
BETA = """
[[account]]
name = "beta"
relay_networks = ["127.0.0.0/29"]
users = ["bob@beta.example"]
"""


class Session:
    """One SMTP session from `source`, in raw lines so that it can stop anywhere in a transaction."""

    def __init__(self, port: int, source: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
        self.file = self.sock.makefile("rb")
        assert self.reply().startswith("220")
        assert self.cmd("EHLO mx.beta.example").startswith("250")

    def reply(self) -> str:
        line = self.file.readline()
        while line[3:4] == b"-":
            line = self.file.readline()
        return line.decode().strip()

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def up_to_rcpt(self, number: str) -> None:
        assert self.cmd(f"MAIL FROM:<{BOB}>").startswith("250")
        assert self.cmd(f"RCPT TO:<{number}@{DOMAIN}>").startswith("250")

    def body(self, text: str) -> None:
        self.sock.sendall(f"From: {BOB}\r\nSubject: net\r\n\r\n{text}\r\n".encode())

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def open_transactions(port: int) -> tuple[Session, Session]:
    """One session paused after RCPT, one mid-DATA (its text sent, the final dot not yet)."""
    after_rcpt, mid_data = Session(port, "127.0.0.3"), Session(port, "127.0.0.3")
    after_rcpt.up_to_rcpt("601600001")
    mid_data.up_to_rcpt("601600002")
    assert mid_data.cmd("DATA").startswith("354")
    mid_data.body("mid data")
    return after_rcpt, mid_data


def finish(after_rcpt: Session, mid_data: Session) -> list[str]:
    said = [mid_data.cmd(".")]
    assert after_rcpt.cmd("DATA").startswith("354")
    after_rcpt.body("after rcpt")
    said.append(after_rcpt.cmd("."))
    return said


def beta_config(tmp_path: Path, smsc_port: int, smtp_port: int = 0, workers: int = 0) -> Path:
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port, extra=BETA)
    text = text.replace('["127.0.0.0/8"]', '["127.0.0.1/32"]', 1)  # acme: not beta's server
    if workers:
        text = worker_config_text(tmp_path, smsc_port, smtp_port, workers, extra=BETA)
        text = text.replace('["127.0.0.0/8"]', '["127.0.0.1/32"]', 1)
    return write_config(tmp_path, text)


async def test_mail_under_way_from_a_removed_network_is_refused_at_the_end_of_data(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            after_rcpt, mid_data = await asyncio.to_thread(open_transactions, gw.port)
            res = await asyncio.to_thread(
                run, config, "account", "set", "beta", "--remove-network", "127.0.0.0/29"
            )
            assert res.returncode == 0, res.stderr
            said = await asyncio.to_thread(finish, after_rcpt, mid_data)
            assert said == [NETWORK_GONE.format(ip="127.0.0.3")] * 2, said
            assert said[0].startswith("550 5.7.1 Relay access denied: 127.0.0.3 no longer allowed")
            # The session goes on: its next MAIL is refused as any address off the networks is.
            again = await asyncio.to_thread(mid_data.cmd, f"MAIL FROM:<{BOB}>")
            assert again.startswith("550 5.7.1"), again
            for s in (after_rcpt, mid_data):
                s.close()
            await asyncio.sleep(0.5)
            assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
        assert smsc.received == []


async def test_a_narrower_network_of_another_account_takes_the_address_from_mail_under_way(
    tmp_path: Path,
) -> None:
    # The narrowest-network rule, as MAIL applies it: gamma's host carved out of beta's /29 makes
    # 127.0.0.3 gamma's alone; beta's mail under way from there is refused, a network of beta's
    # that still holds the address alone (127.0.0.5) goes on.
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            after_rcpt, mid_data = await asyncio.to_thread(open_transactions, gw.port)
            other = await asyncio.to_thread(Session, gw.port, "127.0.0.5")
            await asyncio.to_thread(other.up_to_rcpt, "601600003")
            res = await asyncio.to_thread(
                run, config, "account", "add", "gamma", "--relay-network", "127.0.0.3/32"
            )
            assert res.returncode == 0, res.stderr
            said = await asyncio.to_thread(finish, after_rcpt, mid_data)
            assert said == [NETWORK_GONE.format(ip="127.0.0.3")] * 2, said
            assert (await asyncio.to_thread(other.cmd, "DATA")).startswith("354")
            other.body("still beta's")
            taken = await asyncio.to_thread(other.cmd, ".")
            assert taken.startswith("250 2.0.0 OK: queued as"), taken
            for s in (after_rcpt, mid_data, other):
                s.close()
            await smsc.wait_for(1)
            await asyncio.sleep(0.3)
        assert [s.text for s in smsc.received] == ["net: still beta's"]


async def test_the_check_holds_through_an_intake_worker(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = beta_config(tmp_path, smsc.port, smtp_port, workers=1)
        proc = await start_daemon(config, smtp_port)
        try:
            after_rcpt, mid_data = await asyncio.to_thread(open_transactions, smtp_port)
            res = await asyncio.to_thread(
                run, config, "account", "set", "beta", "--remove-network", "127.0.0.0/29"
            )
            assert res.returncode == 0, res.stderr
            said = await asyncio.to_thread(finish, after_rcpt, mid_data)
            assert said == [NETWORK_GONE.format(ip="127.0.0.3")] * 2, said
            for s in (after_rcpt, mid_data):
                s.close()
            await asyncio.sleep(0.5)
        finally:
            await stop(proc)
        assert smsc.received == []
