"""Users, accounts and opt-outs are cached in memory, yet a change by anyone is seen by the next mail."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw


class Boom(Exception):
    pass


async def test_cli_changes_reach_the_running_daemon_at_the_next_mail(tmp_path: Path) -> None:
    # Security: the daemon's cached ACL must never let a removed user, a suspended account or an
    # opted-out number through once the admin's command has returned.
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port)
        path = tmp_path / "config.toml"
        path.write_text(text)
        cfg = parse_config(text, source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            phone = "601123456"
            rcpt = f"{phone}@{DOMAIN}"

            async def send() -> smtplib.SMTPException | None:
                return (await gw.send(mail(rcpt, "Hello"))).error

            def mail_from_blocking(sender: str) -> int:
                with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as client:
                    client.ehlo()
                    code = client.mail(sender)[0]
                    client.rset()
                    return code

            async def mail_from(sender: str) -> int:
                return await asyncio.to_thread(mail_from_blocking, sender)

            async def cli(*args: str) -> None:
                done = await asyncio.to_thread(smsgw, path, *args)
                assert done.returncode == 0, done.stderr

            bob = "bob@acme.example"
            assert await mail_from(bob) >= 500  # not on the ACL (and now cached as such)
            await cli("user", "add", bob, "--account", "acme")
            assert await mail_from(bob) == 250
            await cli("user", "remove", bob)  # bob never sent, so he can be removed
            assert await mail_from(bob) >= 500
            assert await send() is None  # the sender, its account and the opt-outs are now cached
            await cli("optout", "add", "+48601123456")
            assert isinstance(await send(), smtplib.SMTPRecipientsRefused)
            await cli("optout", "remove", "+48601123456")
            assert await send() is None
            await cli("account", "suspend", "acme")
            assert isinstance(await send(), smtplib.SMTPSenderRefused)
            await cli("account", "resume", "acme")
            assert await send() is None
            await gw.until(lambda: len(smsc.received) == 3)


async def test_a_user_who_sent_mail_is_removed_and_refused_by_the_running_daemon(tmp_path: Path) -> None:
    # Defect: removing a user who had ever sent mail failed on the emails' foreign key, and the
    # daemon went on taking their mail until the retention purge had deleted all of it.
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port)
        path = tmp_path / "config.toml"
        path.write_text(text)
        async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
            bob = "bob@acme.example"
            done = await asyncio.to_thread(smsgw, path, "user", "add", bob, "--account", "acme")
            assert done.returncode == 0, done.stderr
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Last day"), sender=bob)).error is None
            done = await asyncio.to_thread(smsgw, path, "user", "remove", bob)
            assert done.returncode == 0, done.stderr
            res = await gw.send(mail(f"601123456@{DOMAIN}", "Gone"), sender=bob)
            assert isinstance(res.error, smtplib.SMTPSenderRefused)
            rows = gw.store.db.conn.execute("SELECT user_id, mail_from, text FROM emails").fetchall()
            assert rows == [(None, bob, "Last day")]


async def test_a_change_by_this_process_is_seen_within_the_same_loop_turn(tmp_path: Path) -> None:
    # The generation is read once per loop turn; this process's own change must not wait for the next.
    store = Store.open(tmp_path / "db.sqlite")
    store.accounts.add_account("acme", networks=["10.0.0.0/8"])
    store.accounts.add_user(STAFF, "acme")
    assert store.accounts.find_user(STAFF) is not None
    assert store.policy.is_opted_out("+48601123456") is False
    # No await from here on: all of it happens in one turn of the loop.
    store.accounts.remove_user(STAFF)
    store.policy.add_optout("+48601123456", word=None, source="admin")
    store.accounts.set_account_networks("acme", remove=["10.0.0.0/8"])
    assert store.accounts.find_user(STAFF) is None
    assert store.policy.is_opted_out("+48601123456") is True
    assert list(store.accounts.all_networks()) == []
    store.close()


def test_rows_read_in_a_rolled_back_transaction_are_not_kept(tmp_path: Path) -> None:
    # A rolled-back change leaves the generation as it was; another process's later change must not
    # be mistaken for it (a counter would come back to the same value: random values do not).
    path = tmp_path / "db.sqlite"
    ours = Store.open(path)
    ours.accounts.add_account("acme")
    ours.accounts.add_user(STAFF, "acme")
    with pytest.raises(Boom), ours.db.transaction():
        ours.accounts.remove_user(STAFF)
        assert ours.accounts.find_user(STAFF) is None  # read (and cached) inside the transaction
        raise Boom
    theirs = Store.open(path)
    theirs.accounts.add_user("bob@acme.example", "acme")
    assert ours.accounts.find_user(STAFF) is not None
    theirs.close()
    ours.close()


def test_another_process_sees_changes_without_a_loop(tmp_path: Path) -> None:
    # Outside a loop (CLI, tools) the generation is read at every lookup.
    path = tmp_path / "db.sqlite"
    ours = Store.open(path)
    ours.accounts.add_account("acme")
    assert ours.accounts.find_user(STAFF) is None
    theirs = Store.open(path)
    theirs.accounts.add_user(STAFF, "acme")
    theirs.policy.add_optout("+48601123456", word=None, source="admin")
    theirs.policy.suspend_account(theirs.accounts.get_account("acme").id, "test")
    user = ours.accounts.find_user(STAFF)
    assert user is not None
    assert ours.accounts.account_by_id(user.account_id).suspended_at is not None
    assert ours.policy.is_opted_out("+48601123456")
    theirs.close()
    ours.close()
