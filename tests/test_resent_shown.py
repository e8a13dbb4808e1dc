"""A part sent again after its submit went unanswered says so where the admin looks at the message.

An SMSC that takes a submit and never answers it may have passed it to the phone: past the link's
late-answer grace the part goes again, by another link first. The phone may then have the SMS twice,
from two operators' numbers, and only the `mt.possible_duplicate` log line and the link's counter
said so: `smsgw queue show` and the panel's message page said "delivered, attempts 2, link backup",
no word of the first copy. Now both name the earlier submit and its link, in one wording
(`gateway.store.partnotes.resent_words`), kept on the part's row by the statement that records the
re-send's acceptance.

A real daemon against two SMPP servers over TCP (the prefix link's never answers a submit), the
panel through a real HTTP client, `smsgw` as a separate process on the same files.
"""

from __future__ import annotations

import asyncio
import html
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import structlog

from gateway.config import load_config
from gateway.linkstatus import LinkView
from tests.conftest import STAFF, config_text, free_port, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC, SilentSMSC
from tests.test_policy import to
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

TWICE = "may have reached the phone twice: an earlier submit by link main went unanswered"


def written(tmp_path: Path, silent_port: int, backup_port: int) -> Path:
    """Link "main" for +4860, whose submits go unanswered after 0.3 s and wait a 0.5-s grace; the
    default link "backup"; the panel on."""
    text = config_text(tmp_path, smsc_port=silent_port, smsc_extra='prefixes = ["+4860"]', extra=WEB)
    text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 0.3")
    text = text.replace('prefixes = ["+4860"]', 'prefixes = ["+4860"]\nlate_answer_grace_seconds = 0.5')
    text += smsc_link("backup", backup_port, "max_per_second = 1000")
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


def panel_part_words(page: str, seq: int) -> str | None:
    said = re.search(rf'<span class="twice" id="twice-{seq}">(.*?)</span>', page, re.S)
    return None if said is None else html.unescape(said[1])


async def test_queue_show_and_the_panel_name_the_earlier_unanswered_submit(tmp_path: Path) -> None:
    async with SilentSMSC() as silent, HappySMSC() as backup:
        path = written(tmp_path, silent.port, backup.port)
        cfg = load_config(path)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                links = LinkView(gw.daemon.dispatcher)
                await gw.until(lambda: all(v["state"] == "active" for v in links().values()))
                store = gw.store
                await store.write(
                    lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
                )
                assert (await gw.send(mail(to("601123456"), "Twice maybe"))).error is None
                await silent.wait_for(1)  # main took it and said nothing
                await gw.until(lambda: gw.states() == ["delivered"])
                # A number of no prefix: by "backup" alone, once, answered.
                assert (await gw.send(mail(to("511123456"), "Once"))).error is None
                await gw.until(lambda: gw.states() == ["delivered", "delivered"])
                conn = store.db.conn
                (twice_id,), (once_id,) = conn.execute("SELECT message_id FROM parts ORDER BY id").fetchall()
                twice = await asyncio.to_thread(smsgw, path, "queue", "show", str(twice_id))
                once = await asyncio.to_thread(smsgw, path, "queue", "show", str(once_id))
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                    assert (await login(c, STAFF)).status_code == 303
                    twice_page = (await c.get(f"/messages/{twice_id}")).text
                    once_page = (await c.get(f"/messages/{once_id}")).text
    assert [s.text for s in silent.received] == ["Twice maybe"]
    assert sorted(s.text for s in backup.received) == ["Once", "Twice maybe"]
    dup = [e for e in logs if e["event"] == "mt.possible_duplicate"]
    assert [(e["link"], e["earlier"]) for e in dup] == [("backup", "main")]
    assert twice.returncode == 0, twice.stderr
    lines = twice.stdout.splitlines()
    [part] = [
        i for i, line in enumerate(lines) if line.startswith("part 1: delivered, attempts 2, link backup")
    ]
    assert lines[part + 1] == f"  {TWICE}", lines
    assert panel_part_words(twice_page, 1) == TWICE, twice_page
    assert once.returncode == 0, once.stderr
    assert "twice" not in once.stdout
    assert panel_part_words(once_page, 1) is None and "twice" not in once_page


async def test_a_resend_after_a_restart_says_the_earlier_submit_went_before_it(tmp_path: Path) -> None:
    # The submit goes unanswered and the daemon stops inside the 30-s grace; the next one, its clock
    # past the grace, sends the part again by a link that answers. It did not see the first submit,
    # whose link the row does not keep: the message says a submit before a restart may have gone.
    async with SilentSMSC() as silent, HappySMSC() as happy:
        first = config_text(tmp_path, smsc_port=silent.port, smsc_extra="late_answer_grace_seconds = 30")
        path = tmp_path / "config.toml"
        path.write_text(first.replace("response_timeout_seconds = 5", "response_timeout_seconds = 0.3"))
        async with running_gateway(load_config(path)) as gw:
            assert (await gw.send(mail(to("601123456"), "Before the restart"))).error is None
            conn = gw.store.db.conn
            await gw.until(lambda: conn.execute("SELECT state FROM parts").fetchone()[0] == "deferred")
        path.write_text(config_text(tmp_path, smsc_port=happy.port))
        async with running_gateway(load_config(path), lambda: time.time() + 60) as gw:
            await gw.until(lambda: gw.states() == ["delivered"])
            message_id = gw.store.db.conn.execute("SELECT message_id FROM parts").fetchone()[0]
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
    assert [s.text for s in silent.received] == [s.text for s in happy.received] == ["Before the restart"]
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    [part] = [
        i for i, line in enumerate(lines) if line.startswith("part 1: delivered, attempts 2, link main")
    ]
    assert lines[part + 1] == (
        "  may have reached the phone twice: an earlier submit, before a restart of the gateway, may have"
        " gone with no answer recorded"
    ), lines


async def test_a_restore_keeps_the_word_of_a_part_sent_twice_since_the_backup(tmp_path: Path) -> None:
    # The SMS waits in the backup (no SMSC up); since, it went twice and the second copy was taken.
    # The restore carries what the replaced database knew of it, the earlier submit's link too: its
    # message page said so before the restore, and says so after.
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))
    async with running_gateway(load_config(path)) as gw:
        assert (await gw.send(mail(to("601123456"), "Waiting in the backup"))).error is None
    backup = tmp_path / "backup.db"
    assert (await asyncio.to_thread(smsgw, path, "backup", str(backup))).returncode == 0
    db = tmp_path / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as conn:  # as the dispatcher's write of its acceptance leaves it
        conn.execute(
            "UPDATE parts SET state = 'submitted', attempts = 2, link = 'backup', smsc_id = '7',"
            " submitted_at = 1, resent_after = 'main'"
        )
        conn.commit()
    restored = await asyncio.to_thread(smsgw, path, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    shown = await asyncio.to_thread(smsgw, path, "queue", "show", "1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    [part] = [
        i for i, line in enumerate(lines) if line.startswith("part 1: submitted, attempts 2, link backup")
    ]
    assert lines[part + 1] == f"  {TWICE}", lines
