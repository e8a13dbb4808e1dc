"""A reply pool with fewer numbers than the companies texting one phone (R-3.2).

Every (user, phone) gets its own number while the pool lasts. When it runs out, a colleague's
conversation gives up its number first (one no other company shares before one already shared),
so that an answer meant for either stays in the company; when only another company's can,
answers on the shared number go to the operator's fallback address, never to the other company.
That is told: a warning at acceptance, the fallback mail's subject, and "shared" in `conversation
list` and on the panel, where a company admin is never told whose the other conversation is.
Real store and handlers, injected clock (`World`); a real daemon with its simulator, real SMTP
and the CLI; the real panel app.
"""

from __future__ import annotations

import asyncio
import html
import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.conversations import reached
from smsc.simulator.control import send_command
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answers_context import OPS, PHONE, answers_config, texted
from tests.test_conversations import World
from tests.test_process import smsgw
from tests.test_two_way import parsed
from tests.test_web_answers import send as panel_send
from tests.web_helpers import ADMIN, OPERATOR, PLAIN, as_user, seeded_store, web_context

POOL2 = 'pool = ["+48500100200", "+48500100201"]\nfallback_address = "fb@example.com"'
ANNA, BOB, BEA, CAROL = "anna@acme.example", "bob@beta.example", "bea@beta.example", "carol@gamma.example"


def users(w: World) -> None:
    for account, user in (("acme", ANNA), ("beta", BOB), ("gamma", CAROL)):
        w.store.accounts.add_account(account)
        w.store.accounts.add_user(user, account)
    w.store.accounts.add_user(BEA, "beta")


async def test_an_exhausted_pool_takes_a_colleagues_number_before_another_companys(tmp_path: Path) -> None:
    w = World(tmp_path, POOL2)
    users(w)
    to_anna = w.send(ANNA)
    w.now += 60
    to_bob = w.send(BOB)
    w.now += 60
    with capture_logs() as logs:
        assert w.send(BEA) == to_bob  # Anna's is the least recent, but she is of another company
    (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
    assert (warning["displaced_user"], warning["same_account"]) == (BOB, True)
    w.now += 60
    await w.mo("for Anna", to=to_anna)
    await w.mo("for Bea", to=to_bob)
    assert [(k, r) for k, r, _ in w.outbox()] == [("reply", ANNA), ("reply", BEA)]


async def test_answers_on_a_number_taken_from_another_company_go_to_the_fallback(tmp_path: Path) -> None:
    w = World(tmp_path, POOL2)
    users(w)
    to_anna = w.send(ANNA)
    w.now += 60
    w.send(BOB)
    w.now += 60
    assert w.send(CAROL) == to_anna
    w.now += 60
    await w.mo("Tak, zamawiam", to=to_anna)  # to ACME's offer, or to Gamma's? It cannot be told.

    [(kind, rcpt, msg)] = w.outbox()
    assert (kind, rcpt) == ("reply-fallback", "fb@example.com")
    assert "Tak, zamawiam" in msg.get_body().get_content()
    state, note = w.store.db.conn.execute("SELECT state, note FROM mo").fetchone()
    assert state == "fallback"
    assert note == (
        f"+48500100200 was given to {CAROL} while {ANNA} of another account had a conversation with"
        " +48 601 123 456 on it (the reply pool ran out): which one it answers cannot be told"
    )


# ---- live by when the SMS went (R-3: the window counts from the SMS) -------------------------------

DAY = 86400.0


def went(w: World, user: str, at: float) -> None:
    """`user`'s SMS reached the SMSC at `at` (held for quiet hours or an outage before)."""
    delivered(w.store.db.conn, user, at)


def delivered(conn: sqlite3.Connection, user: str, at: float) -> None:
    conn.execute(
        "UPDATE parts SET state = 'delivered', submitted_at = ? WHERE message_id IN (SELECT m.id FROM"
        " messages m JOIN emails e ON e.id = m.email_id WHERE e.mail_from = ?)",
        (at, user),
    )


def anna_held(tmp_path: Path) -> tuple[World, float, str]:
    """The three companies' users; Anna's SMS, its mail at t0, held 20 hours. (world, t0, her number)"""
    w = World(tmp_path, POOL2)
    users(w)
    t0 = w.now
    to_anna = w.send(ANNA)
    went(w, ANNA, t0 + 20 * 3600)
    return w, t0, to_anna


async def test_a_number_whose_held_sms_went_within_the_window_is_not_given_to_another_company(
    tmp_path: Path,
) -> None:
    # Anna's mail came at T0, her SMS was held 20 hours. 7 days 2 hours after her mail (6 days 6 hours
    # after her SMS reached the phone) her number was taken for free by its mail's age and given to
    # Carol of another company; the phone's answer to Anna's SMS then went to Carol.
    w, t0, to_anna = anna_held(tmp_path)
    w.now += 60
    to_bob = w.send(BOB)
    went(w, BOB, w.now)
    w.now = t0 + 7 * DAY + 2 * 3600  # Bob's window is over, Anna's (from her SMS) is not
    assert w.send(CAROL) == to_bob != to_anna
    went(w, CAROL, w.now)
    w.now += 3600
    await w.mo("Tak, dla Anny", to=to_anna)
    assert [(k, r) for k, r, _ in w.outbox()] == [("reply", ANNA)]


async def test_an_answer_on_a_number_shared_with_a_held_sms_still_live_goes_to_the_fallback(
    tmp_path: Path,
) -> None:
    w, t0, to_anna = anna_held(tmp_path)
    w.now = t0 + 7 * DAY
    w.send(BOB)  # live by its mail too
    went(w, BOB, w.now)
    w.now += 2 * 3600
    with capture_logs() as logs:
        assert w.send(CAROL) == to_anna  # the pool ran out: Anna's, live by her SMS, is taken
    (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
    assert (warning["displaced_user"], warning["same_account"]) == (ANNA, False)
    went(w, CAROL, w.now)
    w.now += 3600
    await w.mo("Tak", to=to_anna)  # to ACME's SMS of a week ago, or to Gamma's of an hour ago?
    [(kind, rcpt, _msg)] = w.outbox()
    assert (kind, rcpt) == ("reply-fallback", "fb@example.com")


async def test_on_a_busy_phone_a_held_sms_the_scan_cannot_see_keeps_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scan of the phone's SMS stops at its bounds (thousands of SMS to one phone, scaled down
    # here): Anna's held SMS was then not known to have gone, her number counted as free and went to
    # Carol of another company, the phone's answer to Anna's SMS with it.
    monkeypatch.setattr(reached, "WALK_LIMIT", 10)
    w, t0, to_anna = anna_held(tmp_path)
    w.now = t0 + 7 * DAY
    w.send(BOB)  # live by its mail
    went(w, BOB, w.now)
    w.store.accounts.add_user("alerts@beta.example", "beta")
    for _ in range(12):  # the on-call phone's alerts, past the scan's bounds
        w.now += 60
        w.send("alerts@beta.example", text=f"disk full {w.now}")
    w.now = t0 + 7 * DAY + 2 * 3600
    with capture_logs() as logs:
        assert w.send(CAROL) == to_anna  # the pool ran out: taken knowingly, not as a free number
    (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
    assert (warning["displaced_user"], warning["same_account"]) == (ANNA, False)
    went(w, CAROL, w.now)
    w.now += 3600
    await w.mo("Tak", to=to_anna)  # to ACME's held SMS, or to Gamma's? It cannot be told.
    assert [(k, r) for k, r, _ in w.outbox()][-1] == ("reply-fallback", "fb@example.com")


# ---- a colleague's number no other company shares first ---------------------------------------------


async def test_a_colleagues_number_no_other_company_shares_is_taken_before_a_shared_one(
    tmp_path: Path,
) -> None:
    # Anna's number was already shared with Gamma when Ola of her own company texted the phone:
    # Ola took it, though Dan of ACME held the other number alone, and Ola's answers went to ops too.
    w = World(tmp_path, POOL2)
    users(w)
    dan, ola = "dan@acme.example", "ola@acme.example"
    for user in (dan, ola):
        w.store.accounts.add_user(user, "acme")
    to_anna = w.send(ANNA)
    w.now += 60
    to_dan = w.send(dan)
    w.now += 60
    assert w.send(CAROL) == to_anna  # the pool ran out: shared by ACME and Gamma now
    w.now += 60
    with capture_logs() as logs:
        assert w.send(ola) == to_dan != to_anna
    (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
    assert (warning["displaced_user"], warning["same_account"]) == (dan, True)
    w.now += 60
    await w.mo("Dla Oli", to=to_dan)
    assert [(k, r) for k, r, _ in w.outbox()] == [("reply", ola)]


# ---- told: at acceptance, in the fallback mail, in the listing and on the panel ---------------------------

BETA_GAMMA = (
    f'\n[[account]]\nname = "beta"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{BOB}"]\n'
    f'\n[[account]]\nname = "gamma"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{CAROL}"]\n'
)
SHARED = (
    "open, shared with another account's conversation (reply pool ran out): answers to the fallback address"
)


def listed_states(listing: str) -> dict[str, str]:
    """user → state, of `smsgw conversation list`'s lines."""
    return {
        line.split()[3]: line.split(" last SMS ", 1)[1].split("  ", 1)[1].strip()
        for line in listing.splitlines()
    }


async def test_a_number_shared_by_two_companies_is_told_at_acceptance_in_the_answer_and_the_listing(
    tmp_path: Path,
) -> None:
    # Nobody was told: every conversation listed `open`, the fallback mail said "(no conversation)".
    relay = free_port()
    replies = f'pool = ["+48500100200", "+48500100201"]\nfallback_address = "{OPS}"'
    cfg = answers_config(tmp_path, relay, replies, BETA_GAMMA)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        to_staff = await texted(gw, "Oferta ACME", STAFF)
        to_bob = await texted(gw, "Oferta Beta", BOB)
        with capture_logs() as logs:
            assert await texted(gw, "Oferta Gamma", CAROL) == to_staff != to_bob
        (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
        assert (warning["log_level"], warning["phone"], warning["pool"]) == ("warning", PHONE, 2)
        assert warning["hint"] == f"the reply pool ran out for {PHONE}: add numbers to [replies] pool"
        assert warning["answers"] == "to the fallback address while both conversations live"

        listing = await asyncio.to_thread(smsgw, tmp_path / "config.toml", "conversation", "list")
        assert listing.returncode == 0, listing.stderr
        assert listed_states(listing.stdout) == {STAFF: SHARED, CAROL: SHARED, BOB: "open"}

        command = {"op": "mo", "source": PHONE, "destination": to_staff, "text": "Tak, biorę"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [OPS]
        assert parsed(raw)["Subject"] == f"SMS from {PHONE} to {to_staff} (number shared by two accounts)"


async def test_the_panel_tells_a_company_admin_of_a_shared_number_without_naming_the_other_company(
    tmp_path: Path,
) -> None:
    store = seeded_store(tmp_path)
    web = web_context(tmp_path, store, f'[replies]\npool = ["+48500100200"]\nfallback_address = "{OPS}"\n')
    carl = "carl@rival.example"
    panel_send(web, PLAIN, PHONE)
    panel_send(web, carl, PHONE)  # the pool's one number, to the same phone, for another company
    for user in (PLAIN, carl):
        delivered(store.db.conn, user, store.clock())
    store.db.serve()
    try:
        async with as_user(web, ADMIN) as c:
            page = html.unescape((await c.get("/conversations")).text)
        async with as_user(web, OPERATOR) as c:
            operators = html.unescape((await c.get("/conversations")).text)
    finally:
        web.counts.close()
        store.close()
    assert "open, answers go to the operator (reply pool ran out)" in page
    assert carl not in page and "rival" not in page and "another" not in page and "shared" not in page
    assert operators.count(SHARED) == 2
