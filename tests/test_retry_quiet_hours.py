"""An admin's retry keeps quiet hours (SPEC R-2.4); a message lists the mails sent about its whole mail.

A bulk SMS held for the account's quiet hours (21:00-08:00) was sent at 21:28 after an
operator's Hold then Retry on its message page: the retry made it due at once. It now goes when quiet
hours end, and the CLI says so. And a 1000-character mail cut to the part limit, whose sender was mailed
"text shortened", showed no mail sent about it on its message page or in `smsgw queue show`: only mails
naming the SMS were read, and that notice names the mail.

Real peers: the daemon with its SMTP listener and its web server over HTTP, the SMSC simulator over TCP,
`smsgw` as a process, a real SQLite file; the daemon's clock injected (inside quiet hours, then at their
end).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from billing_reports import mtlate
from gateway.config import load_config
from gateway.store.retrystart import ExpiresBeforeRelease
from tests.conftest import DOMAIN, STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import PASSWORD, csrf_of, password_hash

WARSAW = ZoneInfo("Europe/Warsaw")


class Clock:
    """Real time shifted by `offset` seconds: the CLI, another process, reads the same hour."""

    def __init__(self, at: float | None = None) -> None:
        self.offset = 0.0 if at is None else at - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def _config(tmp_path: Path, smsc_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, extra=WEB, timezone="Europe/Warsaw"))
    path.chmod(0o640)
    return path


def _message_of(store: object, number: str) -> int:
    conn = store.db.conn  # type: ignore[attr-defined]
    return int(conn.execute("SELECT id FROM messages WHERE recipient = ?", (number,)).fetchone()[0])


def _due(store: object, message_id: int) -> float:
    conn = store.db.conn  # type: ignore[attr-defined]
    sql = "SELECT MIN(next_attempt_at) FROM parts WHERE message_id = ?"
    return float(conn.execute(sql, (message_id,)).fetchone()[0])


async def test_a_hold_then_retry_on_the_panel_keeps_a_bulk_sms_for_the_end_of_quiet_hours(
    tmp_path: Path,
) -> None:
    clock = Clock(datetime(2026, 12, 4, 21, 28, tzinfo=WARSAW).timestamp())
    morning = datetime(2026, 12, 5, 8, 0, tzinfo=WARSAW).timestamp()
    async with HappySMSC() as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config), clock) as gw:
            store = gw.store
            await store.write(
                lambda: store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
            )
            assert (
                await gw.send(mail(to("604222111"), "must wait for 08:00", Precedence="bulk"))
            ).error is None
            held = _message_of(store, "+48604222111")
            assert abs(_due(store, held) - morning) < 1
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            async with httpx.AsyncClient(base_url=base) as c:
                page = await c.get("/login")
                r = await c.post(
                    "/login", data={"email": STAFF, "password": PASSWORD, "csrf": csrf_of(page.text)}
                )
                assert r.status_code == 303, r.text[-500:]
                for action in ("hold", "retry"):
                    token = csrf_of((await c.get(f"/messages/{held}")).text)
                    r = await c.post(f"/messages/{held}/{action}", data={"csrf": token})
                    assert r.status_code == 303, (action, r.text[-500:])
                shown = (await c.get(r.headers["location"])).text  # with the retry's `?done=`
            # The dispatcher, woken by the retry, has sent what is due: a mail written after it went.
            assert (await gw.send(mail(to("604222112"), "Marker"))).error is None
            await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received), 10)
            await asyncio.sleep(0.5)
            assert [s.text for s in smsc.received] == ["Marker"]
            assert abs(_due(store, held) - morning) < 1
            assert re.search(r"held for quiet hours until (\d{4}-\d\d-\d\d )?08:00", shown), shown
            assert "1 part(s) released then; they go at 08:00 (quiet hours)" in shown, shown
            # Quiet hours over: it goes.
            clock.offset += morning - clock()
            gw.daemon.dispatcher.wake()
            await smsc.wait_until(lambda: len(smsc.received) == 2, 10)
    assert [s.text for s in smsc.received] == ["Marker", "must wait for 08:00"]


async def test_queue_retry_says_when_a_bulk_sms_goes_and_it_goes_then_and_not_before(tmp_path: Path) -> None:
    # The daemon's clock and the CLI's are real time; the account's quiet hours around now.
    clock = Clock()
    now = datetime.fromtimestamp(clock(), WARSAW)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    async with HappySMSC(fail_suffixes=("14",)) as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config), clock) as gw:
            store = gw.store
            await store.write(
                lambda: store.accounts.update_account(
                    "acme", quiet_start=f"{start:%H:%M}", quiet_end=f"{end:%H:%M}"
                )
            )
            assert (await gw.send(mail(to("604222113"), "Newsletter", Precedence="bulk"))).error is None
            # A plain mail is no bulk: its retry in quiet hours goes at once, as before.
            assert (await gw.send(mail(to("604222114"), "Plain"))).error is None
            await smsc.wait_until(lambda: [s.text for s in smsc.received] == ["Plain"], 10)
            held, plain = _message_of(store, "+48604222113"), _message_of(store, "+48604222114")
            release = _due(store, held)
            await store.write(lambda: store.admin.hold_message(held))
            res = await asyncio.to_thread(smsgw, config, "queue", "retry", str(held))
            assert res.returncode == 0, res.stdout + res.stderr
            assert res.stdout == f"message {held}: 1 part(s) released; goes at {end:%H:%M} (quiet hours)\n"
            await gw.until(lambda: gw.states()[1] == "failed")  # its number's SMS fail (`fail_suffixes`)
            res_plain = await asyncio.to_thread(smsgw, config, "queue", "retry", str(plain))
            assert res_plain.stdout == f"message {plain}: 1 part(s) queued again\n", res_plain.stderr
            gw.daemon.dispatcher.wake()
            await smsc.wait_until(lambda: len(smsc.received) == 2, 10)
            await asyncio.sleep(0.5)
            assert [s.text for s in smsc.received] == ["Plain", "Plain"]
            assert _due(store, held) == release
            clock.offset += release - clock() + 1
            gw.daemon.dispatcher.wake()
            await smsc.wait_until(lambda: len(smsc.received) == 3, 10)
    assert [s.text for s in smsc.received] == ["Plain", "Plain", "Newsletter"]


async def test_queue_show_lists_the_text_shortened_mail_once_on_each_sms_of_the_mail(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            text = ("Zażółć gęślą jaźń " * 60)[:1000]  # 10 parts of 67 characters hold less: cut
            numbers = [to("601555111"), to("601555112")]
            assert (await gw.send(mail(numbers, text, subject="cut"), numbers)).error is None
            conn = store.db.conn
            [(kind,)] = conn.execute("SELECT kind FROM outbox WHERE email_ref IS NOT NULL").fetchall()
            assert kind == "truncated"
            first = _message_of(store, "+48601555111")
            res = await asyncio.to_thread(smsgw, config, "queue", "show", str(first))
    assert res.returncode == 0, res.stdout + res.stderr
    sent = [line for line in res.stdout.splitlines() if line.startswith("mail-sent: ")]
    assert len(sent) == 2, res.stdout  # one on each of its SMS, not two on each
    assert all(
        line.startswith("mail-sent: truncated (about the whole mail) to anna@acme.example") for line in sent
    )


async def test_a_retry_refuses_a_bulk_sms_whose_mail_expires_before_quiet_hours_end(tmp_path: Path) -> None:
    # Sent at 20:50 with an Expiry-Date of 22:00, failed; retried at 21:28: it could go at 08:00 only,
    # when the sender said its text is stale. As acceptance refuses such a mail; --ignore-expiry sends it.
    clock = Clock(datetime(2026, 12, 4, 20, 50, tzinfo=WARSAW).timestamp())
    expiry = datetime(2026, 12, 4, 22, 0, tzinfo=WARSAW)
    async with HappySMSC(fail_suffixes=("15",)) as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config), clock) as gw:
            store = gw.store
            await store.write(
                lambda: store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            msg = mail(
                to("604222115"), "Evening", Precedence="bulk", Expiry_Date=formatdate(expiry.timestamp())
            )
            assert (await gw.send(msg)).error is None
            await gw.until(lambda: gw.states() == ["failed"])
            message = _message_of(store, "+48604222115")
            clock.offset += datetime(2026, 12, 4, 21, 28, tzinfo=WARSAW).timestamp() - clock()
            hours = gw.config.gateway.validity_hours
            with pytest.raises(ExpiresBeforeRelease) as refused:
                await store.write(
                    lambda: store.admin.retry_message(
                        message, before_reset=mtlate.retried, default_validity_hours=hours
                    )
                )
            said = refused.value.said("Europe/Warsaw")
            assert said.startswith(
                "its validity ends at 2026-12-04 22:00 CET, before the account's quiet hours"
            )
            assert "let it go at 08:00" in said
            n = await store.write(
                lambda: store.admin.retry_message(message, before_reset=mtlate.retried, ignore_expiry=True)
            )
            assert n == 1
            assert abs(_due(store, message) - datetime(2026, 12, 5, 8, 0, tzinfo=WARSAW).timestamp()) < 1
