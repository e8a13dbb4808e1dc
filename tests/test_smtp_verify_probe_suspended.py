"""A suspended account's recipient verification probe hears its users' suspension reply.

Postfix's probe (`double-bounce@` from the client's network) stands for the network's account. For a
suspended account its users heard "Account … is suspended: unpaid" but the probe "Relay access
denied: … no user of an account that relays from this address", which Postfix passes on in every
`450 4.1.1 … unverified address` reply: the users and the mail admin chased network access instead
of the suspension. A real SMTP client from the trusted network against the running daemon's relay
port, with and without premium numbers (which move a sender's refusal from MAIL to RCPT).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, running_gateway
from tests.test_session_limits import blocking
from tests.test_smtp_replies import premium_config, reply
from tests.test_smtp_verify_probe import PROBE, probe_config

NUMBER = f"601123456@{DOMAIN}"
SUSPENDED = replies.SUSPENDED.format("acme", "unpaid")


def answers(port: int, sender: str) -> list[str]:
    """MAIL's reply, and RCPT's for a number when MAIL took the sender."""
    with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.1", 0), timeout=30) as c:
        c.ehlo("mx.acme.example")
        got = [reply(c.mail(sender))]
        if got[0].startswith("250"):
            got.append(reply(c.rcpt(NUMBER)))
        c.rset()
        return got


@pytest.mark.parametrize(
    ("config", "expected"),
    [(probe_config, [SUSPENDED]), (premium_config, [replies.OK_SENDER, SUSPENDED])],
    ids=["refused_at_mail", "premium_numbers_refused_at_rcpt"],
)
async def test_a_suspended_accounts_probe_hears_its_users_suspension_reply(
    tmp_path: Path, config: Callable[[Path], Any], expected: list[str]
) -> None:
    async with running_gateway(config(tmp_path)) as gw:
        acme = gw.store.accounts.get_account("acme").id
        await gw.store.write(lambda: gw.store.policy.suspend_account(acme, "unpaid"))
        user = await blocking(lambda: answers(gw.port, STAFF))
        probe = await blocking(lambda: answers(gw.port, PROBE))
        await gw.store.write(lambda: gw.store.policy.resume_account(acme))
        resumed = await blocking(lambda: answers(gw.port, PROBE))
        emails = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    assert user == expected, user
    assert probe == expected, probe  # the same reply at the same stage, not "Relay access denied"
    assert resumed == [replies.OK_SENDER, replies.OK_RCPT], resumed
    assert emails == 0
