"""A mail to abuse@ past the hour's cap is told of abuse@, not of postmaster, after DATA too.

abuse@ (RFC 2142) shares postmaster's hourly caps (`gateway.smtp.postmaster`). A session that passed
RCPT before the cap was reached is counted again in the write that records its mail, and refused
with 451 after DATA: that refusal told a sender who wrote to abuse@ "Too much mail to postmaster".

A real smtplib client sends to the running gateway; an SMTP sink plays the outgoing mail relay.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from gateway.smtp import postmaster
from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_spec_smtp_postmaster import STRANGER, anonymous, open_text

ABUSE = f"abuse@{DOMAIN}"


def burst(port: int, n: int, rcpt: str) -> list[tuple[str, str | None]]:
    """`n` sessions that all pass RCPT to `rcpt` before any sends its mail, then send it one after
    another: each RCPT's reply and DATA's."""
    clients = [smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.2", 0), timeout=30) for _ in range(n)]
    try:
        said = []
        for c in clients:
            c.ehlo("mx.elsewhere.example")
            assert c.mail(STRANGER)[0] == 250
            code, text = c.rcpt(rcpt)
            said.append(f"{code} {text.decode()}")
        out = []
        for c, rcpt_said in zip(clients, said, strict=True):
            code, text = c.data(anonymous()) if rcpt_said.startswith("250") else (0, b"")
            out.append((rcpt_said, f"{code} {text.decode()}" if code else None))
        return out
    finally:
        for c in clients:
            c.close()


async def test_abuse_mail_refused_after_data_names_abuse_not_postmaster(tmp_path: Path) -> None:
    cap, relay = postmaster.PER_CLIENT_PER_HOUR, free_port()
    async with smtp_sink(relay), running_gateway(open_text(tmp_path, relay)) as gw:
        said = await asyncio.wait_for(asyncio.to_thread(burst, gw.port, cap + 2, ABUSE), 60)
    assert all(rcpt_said.startswith("250") for rcpt_said, _ in said)  # all passed RCPT at once
    assert all(d is not None and d.startswith("250 2.0.0 OK: recorded") for _, d in said[:cap]), said
    for _, data_said in said[cap:]:
        assert data_said is not None and data_said.startswith("451 4.7.1 "), said
        assert f"Too much mail to {ABUSE} from your address in the last hour" in data_said, data_said
        assert "postmaster" not in data_said
