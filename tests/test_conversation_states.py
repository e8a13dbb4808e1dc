"""`conversation list` says of each conversation what the answer's matching would make of it.

The window counts from when the SMS went (R-3), so a conversation whose SMS was held for quiet
hours is open for a week after it went, not after its mail came: the list said `closed` 7 days
after the mail while an answer was still mailed to its user. And a conversation whose only SMS
failed at delivery (the phone never got it, so no answer can be to it) was called `unsent`, though
its SMS went to the SMSC: now `unreached`, as for one held, cancelled, expired or refused.
A real daemon with its simulator; the times are moved back in the store, as a week would.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.config import load_config
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_goes_to_sent import conversation_states, written_config
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

DAY = 86400.0


async def sent(gw: Any) -> None:
    """One mail from STAFF to the phone, its SMS at the simulator."""
    core = gw.daemon.simulator.core
    assert (await gw.send(mail(f"601123892@{DOMAIN}", body="Can you call me?"))).error is None
    await gw.until(lambda: len(core.records) == 1)


async def test_a_held_sms_keeps_its_conversation_open_for_the_window_after_it_went(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = written_config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        await sent(gw)
        now = time.time()
        mailed, went = now - 7 * DAY - 2 * 3600, now - 6 * DAY  # held 26 hours, then sent

        def a_week_ago() -> None:
            conn = gw.store.db.conn
            conn.execute("UPDATE conversations SET last_mt_at = ?, started_at = ?", (mailed, mailed))
            conn.execute("UPDATE messages SET created_at = ?", (mailed,))
            conn.execute("UPDATE parts SET submitted_at = ?", (went,))
            conn.execute("UPDATE users SET created_at = ?", (mailed - DAY,))  # a user for longer

        await gw.store.write(a_week_ago)
        assert await conversation_states(path) == {STAFF: "open"}

        await gw.store.write(lambda: gw.store.db.conn.execute("UPDATE parts SET submitted_at = ?", (mailed,)))
        assert await conversation_states(path) == {STAFF: "closed"}


async def test_a_conversation_whose_sms_failed_at_delivery_is_unreached(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = written_config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        assert (await gw.send(mail(f"601123413@{DOMAIN}", body="Can you call me?"))).error is None
        await gw.until(
            lambda: gw.store.db.conn.execute("SELECT state FROM messages").fetchone() == ("failed",)
        )
        assert await conversation_states(path) == {STAFF: "unreached"}


async def test_a_removed_users_conversation_says_where_its_answers_go(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = written_config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        await sent(gw)
        assert await conversation_states(path) == {STAFF: "open"}
        await gw.store.write(lambda: gw.store.accounts.remove_user(STAFF))
        listing = await asyncio.to_thread(smsgw, path, "conversation", "list")
        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.rstrip().endswith(
            f"open, answers recorded only (no [replies] fallback_address): {STAFF}, who is no longer a user"
            " of the gateway"
        ), listing.stdout


def panel_states(page: str) -> dict[str, str]:
    """The Conversations table's rows as phone → state (its last cell)."""
    table = page.split('id="conversations"', 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in table.split("<tr>")[2:]]
    return {cells[1]: html.unescape(cells[-1]) for cells in rows if len(cells) > 1}


async def test_the_panel_shows_each_conversations_state_as_the_cli_does(tmp_path: Path) -> None:
    """The company admin's Conversations page listed conversations without saying which still carry
    their phone's answers to the user: one long closed, one whose SMS never reached the phone and
    one open all looked alike. The page now shows the CLI's state for each row."""
    relay = free_port()
    path, _ = written_config(tmp_path, relay)
    path.write_text(path.read_text() + WEB)
    async with smtp_sink(relay), running_gateway(load_config(path)) as gw:
        store = gw.store
        await store.write(lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin"))
        core = gw.daemon.simulator.core
        for number in ("601123892", "601123893", "601123413"):
            assert (await gw.send(mail(f"{number}@{DOMAIN}", body="Can you call me?"))).error is None
        await gw.until(lambda: len(core.records) == 3)
        failed = "SELECT 1 FROM messages WHERE recipient LIKE '%413' AND state = 'failed'"
        await gw.until(lambda: store.db.conn.execute(failed).fetchone() is not None)
        old = time.time() - 30 * DAY

        def a_month_ago() -> None:
            conn = store.db.conn
            month = "WHERE phone LIKE '%893'"
            conn.execute(f"UPDATE conversations SET last_mt_at = ?, started_at = ? {month}", (old, old))
            conn.execute("UPDATE messages SET created_at = ? WHERE recipient LIKE '%893'", (old,))
            conn.execute(
                "UPDATE parts SET submitted_at = ? WHERE message_id IN"
                " (SELECT id FROM messages WHERE recipient LIKE '%893')",
                (old,),
            )
            conn.execute("UPDATE users SET created_at = ?", (old - DAY,))  # a user for longer

        await store.write(a_month_ago)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, STAFF)).status_code == 303
            page = (await c.get("/conversations")).text
        await store.write(lambda: store.accounts.remove_user(STAFF))
        listing = await asyncio.to_thread(smsgw, path, "conversation", "list")
    assert panel_states(page) == {
        "+48601123892": "open",
        "+48601123893": "closed",
        "+48601123413": "unreached",
    }
    assert listing.returncode == 0, listing.stderr
    by_phone = {line.split()[0]: line.split("  ")[-1] for line in listing.stdout.splitlines()}
    assert "open, answers recorded only" in by_phone["+48601123892"], listing.stdout
    assert by_phone.get("+48601123893", "").endswith("closed"), listing.stdout
    assert by_phone.get("+48601123413", "").startswith("unreached, answers recorded only"), listing.stdout


async def test_a_company_admin_is_not_told_which_company_a_former_user_went_to(tmp_path: Path) -> None:
    """The operator reads "who belongs to another account since"; a company admin only that the
    user is no longer one of theirs: the other company's membership is not theirs to see."""
    relay = free_port()
    path, _ = written_config(tmp_path, relay)
    path.write_text(path.read_text() + WEB)
    boss = "boss@acme.example"
    async with smtp_sink(relay), running_gateway(load_config(path)) as gw:
        store = gw.store
        await sent(gw)

        def moved() -> None:
            accounts = store.accounts
            accounts.add_user(boss, "acme", password_hash=password_hash())
            accounts.set_user(boss, role="admin")
            accounts.add_account("rival")
            accounts.remove_user(STAFF)
            accounts.add_user(STAFF, "rival")

        await store.write(moved)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, boss)).status_code == 303
            page = (await c.get("/conversations")).text
    [state] = panel_states(page).values()
    assert state.startswith("open, answers recorded only") and "no longer a user of this account" in state
    assert "another account" not in page
    # One who left the gateway reads the same to a company admin: told apart, the two said which
    # former users another company has now.
    async with smtp_sink(relay), running_gateway(load_config(path)) as gw:
        await gw.store.write(lambda: gw.store.accounts.remove_user(STAFF))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            assert (await login(c, boss)).status_code == 303
            left = (await c.get("/conversations")).text
    [gone] = panel_states(left).values()
    assert gone == state and "of the gateway" not in left
