"""The relay port's refusal of a sender says what to do, without telling another company's secrets.

A user whose mail server's address is not in their account's relay networks heard "sender not
allowed to send SMS through this gateway", which reads as "you may not send at all". The reply now
names the client's address and the two fixes, the same for a stranger and for another account's
user (a client in any customer's network must not learn who is whose user); the log line names the
account and the exact command, which is then run as the admin would. Real smtplib clients talk to a
running gateway on 127.0.0.1; the command is the real CLI on the same database.
"""

from __future__ import annotations

import asyncio
import shlex
import smtplib
from pathlib import Path

from structlog.testing import capture_logs

from gateway.cli.main import main
from gateway.config import parse_config
from tests.conftest import DOMAIN, STAFF, config_text, running_gateway

BOB = "bob@globex.example"
# Spelled out, so that the test also runs (and fails) against code without it.
NOT_HERE = (
    "550 5.7.1 Relay access denied: sender not allowed to send SMS through this gateway from 127.0.0.1:"
    " the sender is no user of an account that relays from this address; the gateway's admin can add"
    " this address to the sender's account, or the sender to yours"
)
GLOBEX = """
[[account]]
name = "globex"
relay_networks = ["10.9.0.0/16"]
users = ["bob@globex.example"]
"""


def mail_from(port: int, sender: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.1", 0), timeout=30) as c:
        c.ehlo("mail.globex.example")
        code, text = c.docmd(f"MAIL FROM:<{sender}>")
        if code == 250:
            code, text = c.docmd(f"RCPT TO:<601123456@{DOMAIN}>")
        return f"{code} {text.decode()}"


async def test_a_user_whose_server_is_outside_the_accounts_networks_hears_the_fix(tmp_path: Path) -> None:
    # 127.0.0.1 is acme's network, not globex's: Bob's server there is refused, the reply says the
    # address and what the admin can do; the log names globex and the command, which then works.
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=1, extra=GLOBEX))
    cfg = parse_config(path.read_text(), source="test config", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        with capture_logs() as logs:
            answer = await asyncio.to_thread(mail_from, gw.port, BOB)
            await asyncio.sleep(1.1)  # refusals of one kind are logged at most once a second
            stranger = await asyncio.to_thread(mail_from, gw.port, "nobody@acme.example")
        refused = [e for e in logs if e["event"] == "smtp.sender_refused"]
        fix = refused[0].get("fix", "")
        assert fix.startswith("smsgw "), refused[0]
        status = await asyncio.to_thread(main, ["-c", str(path), *shlex.split(fix)[1:]])
        after = await asyncio.to_thread(mail_from, gw.port, BOB)
    assert answer == NOT_HERE, answer
    # A stranger hears the very same: the reply does not tell a user of another account from nobody.
    assert stranger == NOT_HERE, stranger
    assert "globex" not in answer and "bob" not in answer
    assert [(e["sender"], e["reason"]) for e in refused] == [
        (BOB, "envelope sender belongs to another account than the client network"),
        ("nobody@acme.example", "envelope sender is not a user"),
    ]
    assert refused[0]["account"] == "globex" and refused[0]["networks"] == "10.9.0.0/16"
    assert fix == "smsgw account set globex --add-network 127.0.0.1/32"
    assert refused[1]["fix"] == "smsgw user add nobody@acme.example --account acme"
    assert status == 0
    assert after == "250 2.1.5 Recipient OK", after


async def test_a_host_in_no_accounts_network_naming_a_user_gets_no_command_that_trusts_it(
    tmp_path: Path,
) -> None:
    # A network no account lists hears, as before, to log in on the submission port. The log line
    # names whose user the sender is, but no `account set --add-network` for the host: anyone on
    # the internet can write a user's address in MAIL FROM, and that command, run as the log said,
    # let the forger relay as every user of acme without a password.
    text = config_text(tmp_path, smsc_port=1, extra=GLOBEX).replace('["127.0.0.0/8"]', '["10.8.0.0/16"]')
    cfg = parse_config(text, source="test config", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        with capture_logs() as logs:
            answer = await asyncio.to_thread(mail_from, gw.port, STAFF)
    assert answer.startswith("550 5.7.1 Relay access denied: client host not allowed to relay;"), answer
    (refused,) = [e for e in logs if e["event"] == "smtp.sender_refused"]
    assert refused["account"] == "acme" and refused["networks"] == "10.8.0.0/16", refused
    assert "fix" not in refused, refused
    assert "add-network" not in str(refused), refused
