"""A mail server's recipient verification probe (Postfix `reject_unverified_recipient`) gets each
number's real answer.

Postfix probes with `MAIL FROM:<double-bounce@its.host>`, `RCPT TO:<…>` and quits before DATA. That
sender is no user, so the relay port refused it at MAIL: every probe failed and Postfix told each of
the company's users `450 4.1.1 … unverified address`, and no SMS went out. A real SMTP client
against the relay port of the running daemon.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

from gateway.config import parse_config
from gateway.smtp import replies
from tests.conftest import DOMAIN, config_text, running_gateway
from tests.test_session_limits import blocking
from tests.test_smtp_replies import reply

PROBE = "double-bounce@mx.acme.example"


def probed(port: int, source: str, rcpts: list[str]) -> list[str]:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.acme.example")
        answers = [reply(c.mail(PROBE))]
        answers += [reply(c.rcpt(r)) for r in rcpts]
        c.rset()
        return answers


async def test_a_postfix_verification_probe_hears_each_numbers_answer(tmp_path: Path) -> None:
    # Only 127.0.0.1 is the client's network: 127.0.0.2 is a mail server anywhere else.
    text = config_text(tmp_path, smsc_port=1).replace(
        'relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]'
    )
    cfg = parse_config(text, source="test config", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        ours = await blocking(lambda: probed(gw.port, "127.0.0.1", [f"601123456@{DOMAIN}", f"12@{DOMAIN}"]))
        theirs = await blocking(lambda: probed(gw.port, "127.0.0.2", [f"601123456@{DOMAIN}"]))
        emails = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    assert ours[:2] == [replies.OK_SENDER, replies.OK_RCPT], ours
    assert ours[2].startswith("5"), ours  # not a number: the probe learns it, Postfix refuses the mail
    assert theirs[0].startswith("550 5.7.1"), theirs  # from anywhere else, no probe is taken
    assert emails == 0
