"""The billing mail (R-5.1) names the file it carries by the name the file is attached under; a
month that has not begun is not billed by hand.

The daemon bills a month at its start; the mails go through the outbox to a real SMTP sink.
"""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from billing_reports.monthly import Month
from tests.billing_world import TZ, at, cli, prepare
from tests.conftest import free_port, running_gateway, smtp_sink


def account_mail_parts(raw: bytes) -> tuple[str, str] | None:
    """(body text, attachment's file name) of an account's billing mail; None for any other mail."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    if not str(msg["Subject"]).startswith("SMS billing") or "summary" in str(msg["Subject"]):
        return None
    body = msg.get_body(("plain",))
    assert body is not None
    return body.get_content(), str(next(msg.iter_attachments()).get_filename())


async def test_the_billing_mail_names_its_attachment_as_attached(tmp_path: Path) -> None:
    relay = free_port()
    _, cfg = prepare(tmp_path, relay, last_billed="2026-09", traffic={"demo": [at(2026, 10, 14, 12)]})
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: at(2026, 11, 2, 9)) as gw:
        # The account's file to its billing address and to the operator, and the summary.
        await gw.until(lambda: len(sink.messages) == 3)
    found = sorted(p for p in (account_mail_parts(raw) for _, _, raw in sink.messages) if p is not None)
    assert [filename for _, filename in found] == ["2026-10-demo.txt", "2026-10-demo.txt"]
    for body, filename in found:
        assert f"The attached file {filename} lists every SMS" in body


def test_a_month_that_has_not_begun_is_refused(tmp_path: Path) -> None:
    path, cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    coming = Month.containing(time.time(), TZ).next()
    for extra in ((), ("--send",)):
        res = cli(path, "billing", "run", "--month", str(coming), *extra)
        assert res.returncode == 1
        assert f"{coming} has not begun (it starts {coming.start(TZ):%Y-%m-%d} 00:00" in res.stderr
    assert not (cfg.state_dir / "billing" / str(coming)).exists()  # no empty files for it
