"""info@ answers users alone (R-2.3), not a sender in a verification probe's form.

From a client's network, `double-bounce@<any domain>` is taken at MAIL as a mail server's probe,
standing for the network's account. Its `RCPT TO:<info@…>` was taken and a DATA mailed the account's
use and limits to that address, anywhere. A real SMTP client against the running daemon's relay port.
"""

from __future__ import annotations

from pathlib import Path

from gateway.smtp import replies
from tests.conftest import DOMAIN, running_gateway
from tests.test_session_limits import blocking
from tests.test_smtp_verify_probe import probe_config, probed


async def test_a_probe_senders_mail_to_info_is_mailed_nothing(tmp_path: Path) -> None:
    async with running_gateway(probe_config(tmp_path)) as gw:
        asked = await blocking(
            lambda: probed(gw.port, "127.0.0.1", [f"info@{DOMAIN}"], b"Subject: x\r\n\r\n")
        )
        outbox = gw.store.db.conn.execute("SELECT kind, rcpt FROM outbox").fetchall()
        emails = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    assert asked[:2] == [replies.OK_SENDER, replies.OK_RCPT] and asked[2].startswith("250"), asked
    assert outbox == [] and emails == 0, outbox
