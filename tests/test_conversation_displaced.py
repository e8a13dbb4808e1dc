"""A conversation whose phone got a newer SMS from the same number no longer carries its answers.

As shipped (no reply pool, one sender number), two users text one phone and its answer is mailed to
the later one (R-3.1), yet `conversation list` and the panel called both conversations `open`, the
page's legend saying "open: the phone's answers go to the user". The same across companies sharing
a sender: one company's row stayed `open` while another company's user got the answers. The earlier
conversation now reads as displaced, by the answer's own matching; a company admin is not told
whose newer SMS it was. A real daemon with its simulator, the answer sent by `smsgw simulator
send-mo`, the list read by `smsgw conversation list` and the page over HTTP.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import load_config
from gateway.conversations import reached
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_goes_to_sent import DEMO, OURS, PHONE, replies, written_config
from tests.test_conversation_states import panel_states
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

# Its config sets no `[replies] fallback_address`: answers past the newer SMS's window are recorded only.
DISPLACED = (
    "displaced: a newer SMS from this number takes its answers"
    " (to that SMS's sender; once its window has passed, recorded only: no [replies] fallback_address)"
)
RIVAL = "bob@rival.example"


async def texted(gw: Any, sender: str, count: int, source: str = "127.0.0.1") -> None:
    """`sender`'s mail to the phone from its company's mail server at `source`, its SMS at the
    simulator (the `count`-th it has)."""
    asked = mail(f"{PHONE.removeprefix('+48')}@{DOMAIN}", body=f"Call me, {sender}", subject="Call")
    asked.replace_header("From", sender)
    assert (await gw.send(asked, sender=sender, source=source)).error is None
    core = gw.daemon.simulator.core
    await gw.until(lambda: len(core.records) == count)
    sent = "SELECT COUNT(*) FROM parts WHERE submitted_at IS NOT NULL"
    await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == count)


async def answered(gw: Any, path: Path, sink: Any) -> list[str]:
    """The phone answers our number (a real `smsgw simulator send-mo`): whom the answer is mailed to."""
    done = await asyncio.to_thread(smsgw, path, "simulator", "send-mo", "--from", PHONE, "--to", OURS, "Who?")
    assert done.returncode == 0, done.stderr
    await gw.until(lambda: len(replies(sink)) == 1)
    return replies(sink)[0][0]


async def listed(path: Path) -> dict[str, str]:
    """`smsgw conversation list` as user → the state it tells."""
    listing = await asyncio.to_thread(smsgw, path, "conversation", "list")
    assert listing.returncode == 0, listing.stderr
    return {line.split()[3]: line.split("  ")[-1] for line in listing.stdout.splitlines()}


def by_user(page: str) -> dict[str, str]:
    """The Conversations table's rows as user → state (its first and last cells)."""
    table = page.split('id="conversations"', 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    return {html.unescape(cells[0]): html.unescape(cells[-1]) for cells in rows if len(cells) > 1}


async def panel_page(gw: Any, admin: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
        assert (await login(c, admin)).status_code == 303
        return (await c.get("/conversations")).text


async def test_a_colleagues_newer_sms_from_the_same_number_displaces_the_conversation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The answer comes at once: on a loaded machine the newer SMS went within `REPLY_SECONDS` of it and
    # the older over that before, so the answer was taken as the older one's (`reached`), not displaced.
    monkeypatch.setattr(reached, "REPLY_SECONDS", 0.0)
    relay = free_port()
    path, _ = written_config(tmp_path, relay)
    path.write_text(path.read_text() + WEB)
    async with smtp_sink(relay) as sink, running_gateway(load_config(path)) as gw:
        store = gw.store
        await store.write(lambda: store.accounts.set_user(DEMO, password_hash=password_hash(), role="admin"))
        await texted(gw, STAFF, 1)
        assert await listed(path) == {STAFF: "open"}
        await texted(gw, DEMO, 2)
        assert await answered(gw, path, sink) == [DEMO]
        assert await listed(path) == {STAFF: DISPLACED, DEMO: "open"}
        page = await panel_page(gw, DEMO)
    assert by_user(page) == {STAFF: DISPLACED, DEMO: "open"}
    assert "displaced: a newer SMS from the same number reached the phone" in page  # the legend
    # No fallback address here: the legend promised one for answers past the newer SMS's window.
    assert "or are recorded only once that SMS" in page and "or to the fallback address" not in page


async def test_another_companys_newer_sms_displaces_without_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alpha's row stayed `open` while beta's user got the answers. Alpha's admin now reads that a
    newer SMS's sender gets them, not who sent it nor which company."""
    monkeypatch.setattr(reached, "REPLY_SECONDS", 0.0)  # as above: the answer comes at once
    relay = free_port()
    path, _ = written_config(tmp_path, relay)
    path.write_text(path.read_text() + WEB)
    async with smtp_sink(relay) as sink, running_gateway(load_config(path)) as gw:
        store = gw.store

        def rival_on_the_same_number() -> None:
            accounts = store.accounts
            accounts.set_user(DEMO, password_hash=password_hash(), role="admin")
            accounts.add_account("rival", networks=["127.0.0.3/32"], sender=OURS)  # its server, not acme's
            accounts.add_user(RIVAL, "rival")

        await store.write(rival_on_the_same_number)
        await texted(gw, STAFF, 1)
        await texted(gw, RIVAL, 2, source="127.0.0.3")
        assert await answered(gw, path, sink) == [RIVAL]
        # The operator's list: acme's conversation displaced, the rival's open.
        assert await listed(path) == {STAFF: DISPLACED, RIVAL: "open"}
        page = await panel_page(gw, DEMO)
    assert panel_states(page) == {PHONE: DISPLACED}
    assert RIVAL not in page and "rival" not in page.lower()
