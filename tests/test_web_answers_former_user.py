"""A company admin's Answers received list says of an answer to a former user's SMS that the user is
"no longer a user of this account", never that they belong to another account now: the MO's note
said so raw, telling the company which of its former users another company has (`states.told` and
`inbound.told` hide it everywhere else). The operator's list keeps the note as recorded.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out; the
panel is the real app on the daemon's SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from gateway.privacy.erasure import PhoneErasure
from gateway.store.db import Store
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Running, Sink, free_port, mail, running_gateway, smtp_sink
from tests.test_leaver_new_holder import readd
from tests.test_own_numbers import FALLBACK, own_config
from tests.web_helpers import as_user, password_hash, web_context

ACME_ADMIN = "boss@acme.example"
OPERATOR = "ops-admin@acme.example"
MOVED = f"it answers {STAFF}, who belongs to another account since"
TOLD = f"it answers {STAFF}, who is no longer a user of this account"


async def test_a_company_admin_is_not_told_a_former_user_belongs_to_another_account(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay), running_gateway(own_config(tmp_path, "smpp", relay)) as gw:
        store = gw.store

        def staff() -> None:
            for email, role in ((ACME_ADMIN, "admin"), (OPERATOR, "operator")):
                store.accounts.add_user(email, "acme", password_hash=password_hash())
                store.accounts.set_user(email, role=role)

        await store.write(staff)
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601222222@{DOMAIN}", body="invoice 77 due"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        await readd(gw, STAFF, "other")  # moved to another company's account
        command = {"op": "mo", "reply_to_last": True, "text": "Invoice 77 paid"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        row = "SELECT state, note FROM mo"
        await gw.until(lambda: store.db.conn.execute(row).fetchone() == ("fallback", MOVED))

        web = web_context(tmp_path, store, f'[replies]\nfallback_address = "{FALLBACK}"\n')
        try:
            async with as_user(web, ACME_ADMIN) as c:
                page = (await c.get("/conversations")).text
            async with as_user(web, OPERATOR) as c:
                operators = (await c.get("/conversations")).text
        finally:
            web.counts.close()
    assert "Invoice 77 paid" in page and f"fallback: {TOLD}" in page, page
    assert "another account" not in page
    assert MOVED in operators


async def answer_mailed(gw: Running, sink: Sink) -> None:
    """Acme's admin; staff's SMS to the phone, and the phone's answer mailed to staff."""
    store = gw.store
    await store.write(lambda: store.accounts.add_user(ACME_ADMIN, "acme", password_hash=password_hash()))
    await store.write(lambda: store.accounts.set_user(ACME_ADMIN, role="admin"))
    core = gw.daemon.simulator.core
    assert (await gw.send(mail(f"601222222@{DOMAIN}", body="invoice 77 due"))).error is None
    await gw.until(lambda: len(core.records) == 1)
    command = {"op": "mo", "reply_to_last": True, "text": "Invoice 77 paid"}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await sink.wait(1, timeout=20)
    await gw.until(lambda: store.db.conn.execute("SELECT state FROM mo").fetchone() == ("mailed",))


async def acme_admins_page(tmp_path: Path, store: Store) -> str:
    """The Answers page as acme's admin sees it, the panel's real app on the daemon's store."""
    web = web_context(tmp_path, store, f'[replies]\nfallback_address = "{FALLBACK}"\n')
    try:
        async with as_user(web, ACME_ADMIN) as c:
            return (await c.get("/conversations")).text
    finally:
        web.counts.close()


async def test_an_answer_mailed_to_a_user_who_moved_and_wrote_again_is_not_said_mailed_to_none(
    tmp_path: Path,
) -> None:
    # The conversation a mailed answer names follows its user to the new account when they write to
    # the same phone from there: the join of the company's own rows then found no user, and the list
    # said "mailed to None".
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(own_config(tmp_path, "smpp", relay)) as gw:
        store, core = gw.store, gw.daemon.simulator.core
        await answer_mailed(gw, sink)
        await readd(gw, STAFF, "other")
        assert (await gw.send(mail(f"601222222@{DOMAIN}", body="new job, same phone"))).error is None
        await gw.until(lambda: len(core.records) == 2)
        # Begun anew for the new account: its panel showed when the user first wrote from acme.
        started, last = store.db.conn.execute("SELECT started_at, last_mt_at FROM conversations").fetchone()
        assert started == last, (started, last)
        page = await acme_admins_page(tmp_path, store)
    assert "Invoice 77 paid" in page, page
    assert "mailed to None" not in page, page
    assert "mailed to a former user of this account" in page, page


async def test_an_answer_of_an_erased_phone_is_not_said_mailed_to_a_former_user(tmp_path: Path) -> None:
    # `smsgw phone forget` deletes the phone's conversations: the answer's user is unknown then, but
    # no former user of the account's; the list said "a former user of this account" of a current one.
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(own_config(tmp_path, "smpp", relay)) as gw:
        store = gw.store
        await answer_mailed(gw, sink)
        await store.write(lambda: PhoneErasure(store.db.conn, "+48601222222").erase())
        page = await acme_admins_page(tmp_path, store)
    assert "a former user" not in page, page
    assert "mailed (its conversation is no longer kept)" in page, page
