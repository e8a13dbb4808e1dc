"""A company admin's Answers page says an answer's mail is not taken by the mail relay yet, as the
operator's list does (R-3, R-6).

An answer is recorded `mailed` once its mail is queued; a relay that answers 451 defers it for hours
or days. The operator's "SMS received" list said "its mail to anna@… is not taken by the mail relay
yet, the last try: 451 …; next try …", while the company admin's Answers page said "mailed to anna@…"
all along: the outbox's truth was read for the operator's rows only. A real daemon with its built-in
SMSC simulator over SMPP, real SMTP in, a real relay that defers every RCPT, the panel over HTTP.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx

from gateway.config import parse_config
from tests.conftest import STAFF, config_text, free_port, running_gateway, smtp_sink
from tests.test_mo_list_outbox import DeferringRelay, reply_mail
from tests.test_reply_refused import sms_and_answer
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

ADMIN, OPERATOR = "boss@acme.example", "op@acme.example"
WAITING = (
    f"its mail to {STAFF} is not taken by the mail relay yet, the last try: 451 4.3.0 Mailbox server busy"
)


def cell(page: str, table: str) -> str:
    """The last cell of the first row of `table`, as the reader sees it."""
    found = re.search(rf'<table id="{table}">.*?</table>', page, re.S)
    assert found, page
    rows = found.group(0).split("<tr>")[2:]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0], re.S)
    return html.unescape(cells[-1])


async def page(gw: Any, email: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
        assert (await login(c, email)).status_code == 303
        return (await c.get("/conversations")).text


async def test_a_company_admin_reads_that_the_relay_has_not_taken_the_answers_mail(tmp_path: Path) -> None:
    port, smpp = free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=port, extra=WEB).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncontrol_port = {free_port()}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    async with smtp_sink(port, DeferringRelay()), running_gateway(cfg) as gw:
        accounts = gw.store.accounts

        def people() -> None:
            for email, role in ((ADMIN, "admin"), (OPERATOR, "operator")):
                accounts.add_user(email, "acme")
                accounts.set_user(email, password_hash=password_hash(), role=role)

        await gw.store.write(people)
        await sms_and_answer(gw)
        await gw.until(lambda: reply_mail(gw)[2] is not None)  # the relay said 451 once
        theirs, ops = await page(gw, ADMIN), await page(gw, OPERATOR)
    told = cell(theirs, "answers")
    assert f"mailed to {STAFF}" not in told, told
    assert told.startswith(f"queued for {STAFF}: {WAITING}"), told
    assert re.search(r"; next try \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", told), told
    assert WAITING in cell(ops, "mo")  # the operator's list, as before
