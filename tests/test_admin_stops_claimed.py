"""An admin's opt-out and cancel reach the SMS the dispatcher has already claimed, as a suspension
does: none of them reaches the SMSC after the change, and a cancel says truthfully what it could not
call back.

Defects: `smsgw optout add` (and the panel's, the shared list's or an account's own) stopped only
what was claimed after it: 8 SMS to the number went within 0.6 s. `queue cancel` of a claimed SMS
said "message N is queued: no part of it waits to be sent; nothing cancelled" and it went 0.02-0.4 s
later. Real daemon, real SMTP client, an SMPP SMSC over TCP that answers only when the test says
(so parts sit claimed ahead of a full window, deterministically), the CLI as a process and the
panel over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.config import parse_config
from gateway.suspensions import LOOK_SECONDS
from tests.conftest import DOMAIN, STAFF, Running, config_text, mail, running_gateway, send_blocking
from tests.fakes.smsc import HeldSMSC
from tests.test_claim_ahead import count
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import csrf_of, login, password_hash

WINDOW, SMS = 4, 12
ACME_ADMIN, OPERATOR = "boss@acme.example", "op@gw.example"


async def _people(gw: Running) -> None:
    """acme's admin and the operator, with panel passwords."""
    accounts = gw.store.accounts

    def add() -> None:
        for email, role in ((ACME_ADMIN, "admin"), (OPERATOR, "operator")):
            accounts.add_user(email, "acme")
            accounts.set_user(email, password_hash=password_hash(), role=role)

    await gw.store.write(add)


@asynccontextmanager
async def claimed_ahead(tmp_path: Path) -> AsyncIterator[tuple[Running, HeldSMSC, Path]]:
    """acme's mail to SMS numbers: a window's worth sent and unanswered, the next ones claimed
    ahead of it and waiting in the dispatcher's memory until the test answers."""
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, extra=WEB).replace(
            "window = 10", f"window = {WINDOW}"
        )
        # The window stays full until the test answers: no response timeout frees it meanwhile.
        text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 60")
        path = tmp_path / "config.toml"
        path.write_text(text)
        async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
            rcpts = [f"6011{i:05d}@{DOMAIN}" for i in range(SMS)]
            msg = mail(rcpts, "Spring sale, 50% off everything")
            assert (
                await asyncio.to_thread(send_blocking, gw.port, msg, rcpts, STAFF, "127.0.0.2")
            ).error is None
            await smsc.wait_for(WINDOW)
            await gw.until(lambda: count(gw, "state = 'active'") >= 2 * WINDOW)
            yield gw, smsc, path


def claimed_not_sent(gw: Running, smsc: HeldSMSC) -> list[tuple[int, str]]:
    """(message id, number) of the parts claimed and not yet handed to the SMSC, in claim order."""
    sent = {s.destination for s in smsc.received}
    rows = gw.store.db.conn.execute(
        "SELECT message_id, destination FROM parts WHERE state = 'active' ORDER BY id"
    )
    return [(mid, number) for mid, number in rows if number not in sent]


def in_window(gw: Running, smsc: HeldSMSC) -> int:
    """A message whose SMS the SMSC has and has not answered yet."""
    number = smsc.received[0].destination
    row = gw.store.db.conn.execute(
        "SELECT message_id FROM parts WHERE destination = ? AND state = 'active'", (number,)
    ).fetchone()
    return int(row[0])


async def cli(path: Path, *args: str) -> tuple[int, str]:
    done = await asyncio.to_thread(smsgw, path, *args)
    return done.returncode, (done.stdout + done.stderr).strip()


async def answer_all(gw: Running, smsc: HeldSMSC) -> None:
    """Answer every submit until nothing is claimed any more (and a moment for one more to show)."""
    while count(gw, "state = 'active'") or smsc.held:
        smsc.answer(len(smsc.held))
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    smsc.answer(len(smsc.held))


def message(gw: Running, mid: int) -> tuple[str, str | None]:
    state, reason = gw.store.db.conn.execute(
        "SELECT state, reason FROM messages WHERE id = ?", (mid,)
    ).fetchone()
    return state, reason


async def test_an_opt_out_from_the_cli_stops_a_claimed_sms(tmp_path: Path) -> None:
    async with claimed_ahead(tmp_path) as (gw, smsc, path):
        mid, number = claimed_not_sent(gw, smsc)[0]
        assert await cli(path, "optout", "add", number) == (0, f"{number} added to the opt-out list")
        await asyncio.sleep(2 * LOOK_SECONDS)  # a look made just before the CLI's commit let it through
        await answer_all(gw, smsc)
        sent = [s.destination for s in smsc.received]
        assert number not in sent, "an SMS to the opted-out number reached the SMSC"
        assert len(sent) == SMS - 1 and len(set(sent)) == SMS - 1  # the others went, once each
        state, reason = message(gw, mid)
        assert state == "failed" and "opt-out list" in (reason or ""), (state, reason)


async def test_an_accounts_own_opt_out_from_the_panel_stops_its_claimed_sms(tmp_path: Path) -> None:
    async with claimed_ahead(tmp_path) as (gw, smsc, _path):
        await _people(gw)
        mid, number = claimed_not_sent(gw, smsc)[0]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as panel:
            assert (await login(panel, ACME_ADMIN)).status_code == 303
            token = csrf_of((await panel.get("/account")).text)
            r = await panel.post("/optouts", data={"csrf": token, "action": "add", "number": number})
            assert r.status_code == 303, r.text
        # Filed as the account's own (the shared list stays empty): only acme's SMS stop.
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM optouts").fetchone()[0] == 0
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM account_optouts").fetchone()[0] == 1
        await asyncio.sleep(2 * LOOK_SECONDS)
        await answer_all(gw, smsc)
        sent = [s.destination for s in smsc.received]
        assert number not in sent, "an SMS to the number acme's admin opted out reached the SMSC"
        assert len(sent) == SMS - 1
        assert message(gw, mid)[0] == "failed"


async def test_queue_cancel_stops_a_claimed_sms_and_says_what_cannot_be_called_back(tmp_path: Path) -> None:
    async with claimed_ahead(tmp_path) as (gw, smsc, path):
        (mid, number), *_ = claimed_not_sent(gw, smsc)
        assert await cli(path, "queue", "cancel", str(mid)) == (0, f"message {mid}: 1 part(s) cancelled")
        # Its reason as a cancel of a waiting SMS writes it: with none, the bounce said "no reason
        # given by the SMSC".
        assert message(gw, mid) == ("cancelled", "cancelled by admin")
        # One the SMSC has, unanswered: on its way, which no cancel calls back.
        sending = in_window(gw, smsc)
        rc, said = await cli(path, "queue", "cancel", str(sending))
        assert rc == 1, said
        assert said.endswith(
            f"message {sending}: its SMS is being sent now: it cannot be called back; nothing cancelled"
        )
        await answer_all(gw, smsc)
        sent = [s.destination for s in smsc.received]
        assert number not in sent, "the cancelled SMS reached the SMSC"
        assert len(sent) == SMS - 1
        assert message(gw, sending)[0] == "submitted"
        rc, said = await cli(path, "queue", "cancel", str(sending))
        assert rc == 1 and said.endswith(
            f"message {sending}: its SMS was sent: it cannot be called back; nothing cancelled"
        )
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'dsn'").fetchone()[0] >= 1


async def test_the_panels_cancel_stops_a_claimed_sms_as_the_cli_does(tmp_path: Path) -> None:
    async with claimed_ahead(tmp_path) as (gw, smsc, _path):
        await _people(gw)
        (mid, number), *_ = claimed_not_sent(gw, smsc)
        sending = in_window(gw, smsc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as panel:
            assert (await login(panel, OPERATOR)).status_code == 303
            token = csrf_of((await panel.get(f"/messages/{mid}")).text)
            r = await panel.post(f"/messages/{mid}/cancel", data={"csrf": token, "confirm": "yes"})
            assert r.status_code == 303, r.text
            page = (await panel.get(r.headers["location"])).text
            assert "1 part(s) cancelled" in page
            token = csrf_of((await panel.get(f"/messages/{sending}")).text)
            r = await panel.post(f"/messages/{sending}/cancel", data={"csrf": token, "confirm": "yes"})
            assert r.status_code == 409 and "its SMS is being sent now: it cannot be called back" in r.text
        await answer_all(gw, smsc)
        assert number not in [s.destination for s in smsc.received]
        assert message(gw, mid)[0] == "cancelled"


def test_with_no_daemon_running_a_cancel_ends_the_parts_a_killed_daemon_had_claimed(tmp_path: Path) -> None:
    # A daemon killed with a part claimed leaves it `active` until its next start queues it again:
    # with nothing to hold it, `queue cancel` ends it itself (there was no daemon to ask).
    from gateway.store.db import Store

    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=1))
    db = tmp_path / "state" / "smsgw.db"
    db.parent.mkdir(parents=True)
    store = Store.open(db)
    try:
        asyncio.run(accept_one(store))
        (part,) = store.queue.claim_due(10)  # as the killed daemon's dispatcher left it
    finally:
        store.close()
    done = smsgw(config, "queue", "cancel", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "message 1: 1 part(s) cancelled", done.stdout
    store = Store.open(db)
    try:
        row = store.db.conn.execute(
            "SELECT m.state, m.reason, p.state FROM messages m JOIN parts p"
        ).fetchone()
    finally:
        store.close()
    assert row == ("cancelled", "cancelled by admin", "cancelled") and part.id == 1


async def accept_one(store: object) -> None:
    from gateway.smtp.accept import accept
    from tests.test_store import acceptance

    await accept(store, acceptance(["+48601123456"]))  # type: ignore[arg-type]
