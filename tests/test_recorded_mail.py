"""Mail recorded and not sent as SMS (R-1.7, R-2.5): auto-replies, bounces and recalls have an
`emails` row and no message, so the queue's listings never showed them; `smsgw queue recorded`
and the panel's /messages/recorded do, the panel scoped to the admin's account as the search is.

A real SMTP client mails the running gateway from the trusted networks, `smsgw` runs as a separate
process on the same store, and the panel is the app over the daemon's own store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import STAFF, mail, running_gateway
from tests.test_bounces import RCPT, bounce, delivered, out_of_office
from tests.test_policy import BETA, to
from tests.test_process import smsgw
from tests.test_quiet_hours_view import make_admin, written_config
from tests.web_helpers import OPERATOR, as_user, password_hash, web_context

BOB = "bob@beta.example"


async def mail_of_every_kind(gw: Any) -> None:
    """Acme's out-of-office reply, an SMS, a bounce (empty envelope sender), and beta's auto-reply."""
    assert (await delivered(gw.port, out_of_office(), sender=STAFF)).startswith("250 2.0.0 OK: recorded")
    assert (await gw.send(mail(to("601123456"), "A real SMS"))).error is None
    assert (await delivered(gw.port, bounce())).startswith("250 2.0.0 OK: recorded")
    offsite = out_of_office().replace(b"meeting", b"beta offsite")
    assert (await gw.send(offsite, [RCPT], sender=BOB, source="127.0.0.2")).error is None


async def test_queue_recorded_lists_the_mail_that_became_no_sms(tmp_path: Path) -> None:
    path, cfg = written_config(tmp_path, 1, extra=BETA)
    async with running_gateway(cfg) as gw:
        await mail_of_every_kind(gw)
        listing = await asyncio.to_thread(smsgw, path, "queue", "recorded")
        first = await asyncio.to_thread(smsgw, path, "queue", "recorded", "--limit", "1")
        queue = await asyncio.to_thread(smsgw, path, "queue", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert len(lines) == 3, lines  # newest first, the SMS not among them
    offsite, bounced, oof = lines
    assert f"from {BOB} [127.0.0.2]  account beta" in offsite and '"Automatic reply: beta offsite"' in offsite
    assert "from <> [127.0.0.1]" in bounced and '"Undelivered Mail"' in bounced
    assert "account -" in bounced and "bounce (empty envelope sender))" in bounced, bounced
    assert f"from {STAFF} [127.0.0.1]  account acme" in oof and "(out-of-office reply" in oof
    assert first.stdout.splitlines() == [offsite]
    # `queue list` (from messages) has the SMS alone: why the recorded mail needed a listing.
    assert "A real SMS" not in queue.stdout and len(queue.stdout.splitlines()) == 1


async def test_the_panel_shows_recorded_mail_to_its_account_and_all_of_it_to_the_operator(
    tmp_path: Path,
) -> None:
    _path, cfg = written_config(tmp_path, 1, extra=BETA)
    async with running_gateway(cfg) as gw:
        await mail_of_every_kind(gw)
        store = gw.store

        def logins() -> None:
            make_admin(store)
            store.accounts.add_user(OPERATOR, "acme", password_hash=password_hash())
            store.accounts.set_user(OPERATOR, role="operator")

        await store.write(logins)
        web = web_context(tmp_path, store)
        pages: dict[str, str] = {}
        try:
            for who in (STAFF, OPERATOR):
                async with as_user(web, who) as c:
                    pages[who] = (await c.get("/messages/recorded")).text
                    assert 'href="/messages/recorded"' in (await c.get("/messages")).text
                    assert (await c.get("/messages/recorded?before=x")).status_code == 400
        finally:
            web.counts.close()
    admin, operator = pages[STAFF], pages[OPERATOR]
    assert "Automatic reply: meeting" in admin and "<td>127.0.0.1</td>" in admin
    assert "out-of-office reply" in admin
    for other in ("beta offsite", BOB, "127.0.0.2", "Undelivered Mail", "A real SMS"):
        assert other not in admin, other
    for every in ("Automatic reply: meeting", "beta offsite", BOB, "<td>127.0.0.2</td>", "Undelivered Mail"):
        assert every in operator, every
    assert "A real SMS" not in operator


async def test_a_strangers_subject_is_shown_cut_and_with_its_controls_escaped(tmp_path: Path) -> None:
    # A recorded auto-reply's subject is a stranger's: 5,000 characters made the panel's table
    # 45,000 px wide and the CLI's line as long; a U+202E in it reversed the rest of the cell.
    path, cfg = written_config(tmp_path, 1)
    async with running_gateway(cfg) as gw:
        long = out_of_office().replace(
            b"Subject: Automatic reply: meeting", b"Subject: Automatic reply: " + b"x" * 5000
        )
        assert (await delivered(gw.port, long, sender=STAFF)).startswith("250 2.0.0 OK: recorded")
        flipped = out_of_office().replace(b"meeting", "bell\u202etxet".encode())
        assert (await delivered(gw.port, flipped, sender=STAFF)).startswith("250 2.0.0 OK: recorded")
        listing = await asyncio.to_thread(smsgw, path, "queue", "recorded")
        store = gw.store
        await store.write(lambda: make_admin(store))
        web = web_context(tmp_path, store)
        try:
            async with as_user(web, STAFF) as c:
                page = (await c.get("/messages/recorded")).text
        finally:
            web.counts.close()
    assert all(len(line) < 400 for line in listing.stdout.splitlines()), listing.stdout
    assert "x" * 5000 not in page and "x" * 150 + "…" in page
    # Direction marks are dropped from text without right-to-left letters; one kept would be escaped.
    assert "\u202e" not in page.split("<table", 1)[1]
    assert "belltxet" in page or "bell\\u202etxet" in page
