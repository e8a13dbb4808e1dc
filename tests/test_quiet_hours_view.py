"""Bulk SMS held for quiet hours (R-2.4), as an admin sees and changes them: the CLI's queue list,
the panel's message list, message page and dashboard say until when each waits, and a change of
the account's window (CLI or panel) moves the release of what it holds, at once.

A real SMTP client mails the running gateway (its own clock: quiet hours are set around the hour
the test runs at), an SMPP fake takes what goes, `smsgw` runs as a separate process on the same
store, and the panel is the app over the daemon's own store.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import Config, parse_config
from tests.conftest import STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_policy import BETA, to
from tests.test_process import smsgw
from tests.web_helpers import as_user, csrf_of, password_hash, web_context

WARSAW = ZoneInfo("Europe/Warsaw")  # the tests' [gateway] timezone (the default)


def window(hours_left: int, now: datetime | None = None) -> tuple[str, str]:
    """Quiet hours that began an hour before `now` and end `hours_left` hours after it, on Warsaw's
    clock (`now`: this moment)."""
    now = now or datetime.now(WARSAW)
    return f"{now - timedelta(hours=1):%H:%M}", f"{now + timedelta(hours=hours_left):%H:%M}"


def until(hours_left: int, now: datetime | None = None) -> str:
    """The release a window of `window(hours_left, now)` is said to hold an SMS until: its hour, with
    the date where it falls on the next day (a test run after 21:00 in Warsaw)."""
    now = now or datetime.now(WARSAW)
    release = now + timedelta(hours=hours_left)
    return f"{release:{'%H:%M' if release.date() == now.date() else '%Y-%m-%d %H:%M'}}"


def written_config(tmp_path: Path, smsc_port: int, extra: str = "") -> tuple[Path, Config]:
    """The config as a file too: `smsgw` (another process) reads it."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, extra=extra))
    return path, parse_config(path.read_text(), source=str(path), base_dir=tmp_path)


async def held_newsletter(gw: Any, smsc: HappySMSC, start: str, end: str) -> int:
    """Acme's bulk mail written in its quiet hours, held; mail without Precedence goes past it."""
    await gw.store.write(lambda: gw.store.accounts.update_account("acme", quiet_start=start, quiet_end=end))
    assert (await gw.send(mail(to("601123456"), "Newsletter", Precedence="bulk"))).error is None
    assert (await gw.send(mail(to("601123457"), "Marker"))).error is None
    await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
    assert [s.text for s in smsc.received] == ["Marker"]
    return int(message_of(gw, "+48601123456")[0])


def message_of(gw: Any, number: str) -> tuple[int, float, float, float]:
    """(id, the part's due time and expiry, the message's expiry) of the SMS to `number`."""
    return gw.store.db.conn.execute(
        "SELECT m.id, p.next_attempt_at, p.expires_at, m.expires_at FROM messages m"
        " JOIN parts p ON p.message_id = m.id WHERE m.recipient = ?",
        (number,),
    ).fetchone()


def make_admin(store: Any) -> None:
    """Acme's sender logs in to the panel as the account's admin."""
    store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin")


async def queue_line(path: Path, number: str) -> str:
    listing = await asyncio.to_thread(smsgw, path, "queue", "list")
    assert listing.returncode == 0, listing.stderr
    [line] = [line for line in listing.stdout.splitlines() if number in line]
    return line


async def test_the_cli_and_the_panel_say_until_when_a_bulk_sms_is_held(tmp_path: Path) -> None:
    # It showed as plain `queued` everywhere, as if stuck; the dashboard did not list it at all.
    now = datetime.now(WARSAW)
    start, end = window(2, now)
    note = f"held for quiet hours until {until(2, now)}"
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port)
        async with running_gateway(cfg) as gw:
            held = await held_newsletter(gw, smsc, start, end)
            line = await queue_line(path, "+48601123456")
            assert " queued " in line and f"({note})" in line, line
            assert "held for quiet hours" not in await queue_line(path, "+48601123457")
            # `status` counts them apart: "parts queued 1" alone, all night, looked like a stuck queue.
            status = await asyncio.to_thread(smsgw, path, "status")
            assert f"1 of them {note}" in status.stdout, status.stdout
            shown = json.loads((await asyncio.to_thread(smsgw, path, "status", "--json")).stdout)
            assert shown["queue"]["held_for_quiet_hours"]["parts"] == 1
            store = gw.store
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin")
            )
            web = web_context(tmp_path, store)
            try:
                async with as_user(web, STAFF) as c:
                    pages = {p: (await c.get(p)).text for p in ("/messages", f"/messages/{held}", "/")}
            finally:
                web.counts.close()
    assert f'<span id="held">{note}</span>' in pages[f"/messages/{held}"]
    for page in ("/messages", "/"):
        [row] = [r for r in pages[page].split("<tr>") if "+48601123456" in r]
        assert f"<td>{note}</td>" in row, (page, row)
    assert "+48601123457" not in pages["/"]  # sent: nothing to wait for


async def test_turning_quiet_hours_off_sends_the_held_sms_at_once(tmp_path: Path) -> None:
    # `account set --quiet-hours none` left it held until the old window's end (2 h here): only a
    # `queue retry` sent it. Nothing wakes the dispatcher here: it claims by due time.
    start, end = window(2)
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port)
        async with running_gateway(cfg) as gw:
            await held_newsletter(gw, smsc, start, end)
            _mid, held_until, part_expiry, _message_expiry = message_of(gw, "+48601123456")
            done = await asyncio.to_thread(smsgw, path, "account", "set", "acme", "--quiet-hours", "none")
            assert done.returncode == 0, done.stderr
            await smsc.wait_until(lambda: any(s.text == "Newsletter" for s in smsc.received), timeout=10)
            await gw.until(lambda: gw.states() == ["delivered", "delivered"])
            _mid, due, new_part_expiry, new_message_expiry = message_of(gw, "+48601123456")
    # The validity counts from the release, as for an SMS written when the hold ended.
    assert due < held_until - 3600
    assert round(part_expiry - new_part_expiry) == round(held_until - due)
    assert new_message_expiry == new_part_expiry


async def test_a_window_changed_in_the_panel_moves_the_release_to_its_new_end(tmp_path: Path) -> None:
    # The panel's account page goes through the same store call as the CLI. Another account's SMS
    # held for the same hours keep theirs.
    now = datetime.now(WARSAW)
    start, end = window(2, now)
    _start, later = window(3, now)
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port, extra=BETA)
        async with running_gateway(cfg) as gw:
            store = gw.store
            await store.write(lambda: store.accounts.update_account("beta", quiet_start=start, quiet_end=end))
            bulk = mail(to("601123458"), "Beta's newsletter", Precedence="bulk")
            bulk.replace_header("From", "bob@beta.example")
            assert (await gw.send(bulk, sender="bob@beta.example", source="127.0.0.2")).error is None
            held = await held_newsletter(gw, smsc, start, end)
            before = {n: message_of(gw, n) for n in ("+48601123456", "+48601123458")}
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="admin")
            )
            web = web_context(tmp_path, store)
            form = {"split_mode": "concatenated", "dlr_mail": "failed", "quiet_hours": f"{start}-{later}"}
            try:
                async with as_user(web, STAFF) as c:
                    token = csrf_of((await c.get("/account")).text)
                    r = await c.post("/account", data={**form, "csrf": token}, follow_redirects=True)
                    assert r.status_code == 200 and "account acme updated" in r.text, r.text[-500:]
                    page = (await c.get(f"/messages/{held}")).text
                    dashboard = (await c.get("/")).text
            finally:
                web.counts.close()
            after = {n: message_of(gw, n) for n in ("+48601123456", "+48601123458")}
            line = await queue_line(path, "+48601123456")
            await asyncio.sleep(1.5)  # the dispatcher looks at least once a second: nothing is due
            sent = [s.text for s in smsc.received]
    _mid, due, part_expiry, message_expiry = before["+48601123456"]
    _mid, new_due, new_part_expiry, new_message_expiry = after["+48601123456"]
    assert new_due - due == 3600  # the new end, an hour later
    assert round(new_part_expiry - part_expiry) == round(new_message_expiry - message_expiry) == 3600
    assert after["+48601123458"] == before["+48601123458"]
    assert sent == ["Marker"]
    assert f'<span id="held">held for quiet hours until {until(3, now)}</span>' in page
    assert f"held for quiet hours until {until(3, now)}" in line, line
    assert "+48601123458" not in dashboard  # beta's, not this admin's


async def test_turning_the_accounts_bulk_off_sends_at_once_what_it_alone_held(tmp_path: Path) -> None:
    # `account set --bulk off` left every SMS it had held waiting for the window's end (2 h here).
    # A mail that asked to wait itself (Precedence: bulk) still waits.
    start, end = window(2)
    async with HappySMSC() as smsc:
        path, cfg = written_config(tmp_path, smsc.port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start=start, quiet_end=end, bulk=True)
            )
            assert (await gw.send(mail(to("601123456"), "Newsletter", Precedence="bulk"))).error is None
            assert (await gw.send(mail(to("601123457"), "Reminder"))).error is None
            # Held before the upgrade that records why (migration 26): not known, so it keeps its time.
            assert (await gw.send(mail(to("601123458"), "Older"))).error is None
            older = message_of(gw, "+48601123458")[0]
            await gw.store.write(
                lambda: gw.store.db.conn.execute("UPDATE messages SET bulk = NULL WHERE id = ?", (older,))
            )
            _mid, newsletter_until, _pe, _me = message_of(gw, "+48601123456")
            _mid, reminder_until, part_expiry, _me = message_of(gw, "+48601123457")
            assert newsletter_until == reminder_until > datetime.now(WARSAW).timestamp() + 3600
            done = await asyncio.to_thread(smsgw, path, "account", "set", "acme", "--bulk", "off")
            assert done.returncode == 0, done.stderr
            await smsc.wait_until(lambda: any(s.text == "Reminder" for s in smsc.received), timeout=10)
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "queued", "queued"])
            _mid, due, new_part_expiry, _me = message_of(gw, "+48601123457")
            assert message_of(gw, "+48601123456")[1] == newsletter_until  # still held
            assert message_of(gw, "+48601123458")[1] == newsletter_until
    assert [s.text for s in smsc.received] == ["Reminder"]
    assert round(part_expiry - new_part_expiry) == round(reminder_until - due)  # validity from the release
