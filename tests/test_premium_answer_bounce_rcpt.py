"""The bounce of a premium answer's SMS names the address the client wrote to, and its subject.

Defect: a client's answer to a vote (mailed to `premium-…@`) whose SMS failed at the SMSC bounced
with `Final-Recipient: rfc822; +48601996013@sms.example.com` and returned headers `To: +48601996013@…`
with no Subject: an address the client never used, so its bounce processing matched the report to no
mail of its own. Staff mail's SMS keep their RCPT and the mail's subject; an answer's now do too.

Against real peers: the daemon with its built-in SMSC simulator (which fails numbers ending in 13),
the vote sent through it, the answer by a real SMTP client (in the daemon, and through an intake
process, whose relay hands the address over the channel), the bounce caught at a real SMTP sink.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_dsn_format import report_of
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, reply_to, smtp

FAILING = "+48601996013"  # the simulator fails numbers ending in 13


def _in_workers(n: int) -> Callable[[str], str] | None:
    """The config's edit that serves the relay port from `n` intake processes (none: in the daemon)."""
    return (lambda text: text.replace("[smtp]\n", f"[smtp]\nintake_processes = {n}\n")) if n else None


@pytest.mark.parametrize("workers", [0, 1], ids=["in-daemon", "intake-process"])
@pytest.mark.parametrize("spelled", ["as-given", "upper-case"])
async def test_the_bounce_of_an_answer_names_the_answer_address_and_subject(
    tmp_path: Path, workers: int, spelled: str
) -> None:
    async with premium(tmp_path, _in_workers(workers)) as w:
        assert bool(w.gw.daemon.intake) == bool(workers)  # the relay port in a worker process, or here
        vote = await w.vote(phone=FAILING)
        answer, to = reply_to(vote, "Dziekujemy za glos!")
        if spelled == "upper-case":  # a mail program that writes the local part its own way
            local, _, domain = to.partition("@")
            to = f"{local.upper()}@{domain}"
        assert to.lower().startswith("premium-"), to
        assert (await smtp(w.gw.port, answer, to)).error is None
        seen = len(w.sink.messages)
        await w.sink.wait(seen + 1)
        mail_from, rcpts, raw = w.sink.messages[seen]
    assert (mail_from, rcpts) == ("<>", [CLIENT])
    fields, headers = report_of(raw)
    assert fields["Action"] == "failed", fields
    assert fields["Final-Recipient"] == f"rfc822; {to}", fields["Final-Recipient"]
    assert headers["To"] == to, headers["To"]
    assert headers["Subject"] == f"Re: {vote['Subject']}", headers["Subject"]
    assert FAILING not in str(fields["Final-Recipient"]) + str(headers["To"])
