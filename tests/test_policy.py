"""Who may send how much: limits, info@, anti-spam rules, opt-outs, quiet hours, suspension (R-2.2–R-2.4).

All through real SMTP sessions against a running gateway and a fake SMSC; assertions on the store.
Identical texts and suspension for failures have modules of their own (test_policy_identical.py,
test_policy_suspension.py); `to`, `code`, `error_text`, `Clock` and `BETA`, which other modules
import, stay here.
"""

from __future__ import annotations

import asyncio
import email
import os
import time
from datetime import datetime
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import (
    DOMAIN,
    STAFF,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def code(res: object) -> int | None:
    err = getattr(res, "error", None)
    if getattr(err, "recipients", None):
        return next(iter(err.recipients.values()))[0]  # type: ignore[union-attr]
    return getattr(err, "smtp_code", None)


def error_text(res: object) -> str:
    err = getattr(res, "error", None)
    raw = getattr(err, "smtp_error", b"")
    if not raw and getattr(err, "recipients", None):
        raw = next(iter(err.recipients.values()))[1]  # type: ignore[union-attr]
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def test_monthly_limit_is_exact_under_concurrent_sessions(tmp_path: Path) -> None:
    # 20 sessions race for the last 10 parts: exactly 10 mails go, 10 are refused naming the limit.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=10))
        results = await asyncio.gather(*(gw.send(mail(to(f"60112{i:04d}"), f"Race {i}")) for i in range(20)))
        ok = [r for r in results if r.error is None]
        refused = [r for r in results if r.error is not None]
        assert len(ok) == 10 and len(refused) == 10
        assert all(code(r) == 550 for r in refused)
        assert "Monthly limit of account acme: 10 parts, used 10, this email needs 1" in error_text(
            refused[0]
        )
        assert gw.store.admin.count_messages() == 10
        month = datetime.now(ZoneInfo("Europe/Warsaw")).strftime("%Y-%m")
        assert gw.store.accounts.usage(f"account:{gw.store.accounts.get_account('acme').id}", month) == 10
        # The user is told once per period, not once per refusal.
        kinds = [r[0] for r in gw.store.db.conn.execute("SELECT kind FROM outbox")]
        assert kinds.count("limit") == 1


async def test_each_user_refused_by_the_account_limit_is_told_once(tmp_path: Path) -> None:
    # defect: the notice was remembered per limit, so after the first user of an account was
    # told, every other user refused by the same account limit that day got only the 550.
    colleague = "jan@acme.example"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", daily_limit=1))
        await gw.store.write(lambda: gw.store.accounts.add_user(colleague, "acme"))
        assert (await gw.send(mail(to("601123451"), "First"))).error is None
        for sender in (STAFF, STAFF, colleague, colleague):
            msg = mail(to("601123452"), f"From {sender}")
            msg.replace_header("From", sender)
            assert code(await gw.send(msg, sender=sender)) == 550
        told = gw.store.db.conn.execute("SELECT rcpt FROM outbox WHERE kind = 'limit' ORDER BY id").fetchall()
        assert told == [(STAFF,), (colleague,)]


async def test_user_daily_limit_counts_parts_for_all_recipients(tmp_path: Path) -> None:
    # A 2-part text to 3 numbers needs 6 parts; a daily limit of 5 refuses it as a whole.
    long_text = "word " * 60  # 300 characters: 2 concatenated parts
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=5))
        rcpts = [to("601123451"), to("601123452"), to("601123453")]
        res = await gw.send(mail(rcpts, long_text), rcpts)
        assert code(res) == 550
        assert f"Daily limit of user {STAFF}: 5 parts, used 0, this email needs 6" in error_text(res)
        assert gw.store.admin.count_messages() == 0


async def test_a_retried_mail_is_neither_refused_by_the_limit_nor_charged_again(tmp_path: Path) -> None:
    # with: the client lost our 250 and sends the mail again. With the limit used up by
    # that very mail the retry hears "already accepted", not 550; a copy to one more number is
    # charged for that number alone.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=3))
        acme = gw.store.accounts.get_account("acme").id
        month = datetime.now(ZoneInfo("Europe/Warsaw")).strftime("%Y-%m")
        two = [to("601123451"), to("601123452")]
        msg = mail(two, "Once", Message_ID="<retry-limit@acme.example>")
        assert (await gw.send(msg, two)).error is None
        assert (await gw.send(msg, two)).error is None  # the retry: not refused by the limit it used
        assert gw.store.accounts.usage(f"account:{acme}", month) == 2
        three = [*two, to("601123453")]
        del msg["To"]
        msg["To"] = ", ".join(three)
        assert (await gw.send(msg, three)).error is None  # one new number: 1 part, within the limit
        assert gw.store.accounts.usage(f"account:{acme}", month) == 3
        assert gw.store.admin.count_messages() == 3


async def test_info_address_answers_with_limits_and_use(tmp_path: Path) -> None:
    # an empty mail to info@ brings back the user's and the account's limits and use.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=1000))
            await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=50))
            await gw.send(mail(to("601123456"), "One part"))
            res = await gw.send(mail(to("info"), ""), [to("info")])
            assert res.error is None
            await sink.wait(1)
            _from, rcpts, content = sink.messages[0]
            assert rcpts == [STAFF]
            body = email.message_from_bytes(content, policy=policy.default).get_body().get_content()
            assert f"User {STAFF}" in body and "1 of 50" in body
            assert "Account acme" in body and "1 of 1000" in body
            assert smsc.received and len(smsc.received) == 1  # info@ itself sent no SMS


async def test_info_reply_is_on_disk_before_the_250(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The answer to info@ goes through the group commit like any acceptance: the WAL holding its
    # outbox row is fsynced before the client hears `250`.
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # a slow disk: an answer that does not wait for it comes first
        time.sleep(0.3)
        real_fsync(fd)
        events.append("fsync")

    monkeypatch.setattr(os, "fsync", fsync)
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        gw.store.db.conn.set_trace_callback(
            lambda sql: events.append("outbox row") if sql.startswith("INSERT INTO outbox") else None
        )
        res = await gw.send(mail(to("info"), ""), [to("info")])
        answered = list(events)
        gw.store.db.conn.set_trace_callback(None)
        assert res.error is None
        assert "outbox row" in answered
        assert "fsync" in answered[answered.index("outbox row") :]


async def test_info_reply_leaves_at_once(tmp_path: Path) -> None:
    # The commit that queued the answer wakes the outbox worker instead of leaving it to its next poll.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            res = await gw.send(mail(to("info"), ""), [to("info")])
            assert res.error is None
            await sink.wait(1, timeout=2)
            assert sink.messages[0][1] == [STAFF]


async def test_info_address_ignores_auto_replies(tmp_path: Path) -> None:
    # No loops: an out-of-office answer to info@ gets no answer.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(to("info"), "I am away", Auto_Submitted="auto-replied"), [to("info")])
        assert res.error is None
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


async def test_stop_answer_opts_the_number_out_across_restarts(tmp_path: Path) -> None:
    # F14: an MO "STOP" puts the number on the opt-out list; RCPT to it is refused, also after a restart.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(to("601123456"), "Offer"))
            await smsc.wait_for(1)
            assert await smsc.inject_mo("+48601123456", "+48100200300", "Stop") >= 1
            await gw.until(lambda: gw.store.policy.is_opted_out("+48601123456"))
            res = await gw.send(mail(to("601123456"), "Another offer"))
            assert code(res) == 550 and "opted out" in error_text(res)
        async with running_gateway(cfg) as gw:
            res = await gw.send(mail(to("601123456"), "After restart"))
            assert code(res) == 550 and "opted out" in error_text(res)
            assert len(smsc.received) == 1


class Clock:
    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t


async def test_quiet_hours_hold_bulk_mail_until_the_window_opens(tmp_path: Path) -> None:
    # bulk mail at 22:00 waits until 08:00 (not dropped, sender told); other mail goes at once.
    tz = ZoneInfo("Europe/Warsaw")
    clock = Clock(datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0))
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port), clock) as gw:
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
        )
        await gw.send(mail(to("601123456"), "Newsletter", Precedence="bulk"))
        await gw.send(mail(to("601123457"), "Urgent: call me"))
        # A later mail is the marker: the newsletter, queued first, would have gone before it.
        await gw.send(mail(to("601123458"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Urgent: call me", "Marker"]
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'held'").fetchone()[0] == 1
        clock.t += 10 * 3600 + 60  # 08:01 the next morning
        gw.daemon.dispatcher.wake()
        await smsc.wait_for(3)
        assert smsc.received[2].text == "Newsletter"


async def test_relay_from_untrusted_network_is_refused(tmp_path: Path) -> None:
    # b: a known sender from an address outside the account's networks is refused at MAIL.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.set_account_networks(
                    "acme", add=["127.0.0.1/32"], remove=["127.0.0.0/8"]
                )
            )
            res = await gw.send(mail(to("601123456"), "From elsewhere"), source="127.0.0.2")
            assert code(res) == 550
            assert gw.store.admin.count_messages() == 0
            ok = await gw.send(mail(to("601123456"), "Inside the network"))
            assert ok.error is None


BETA = """
[[account]]
name = "beta"
relay_networks = ["127.0.0.2/32"]
users = ["bob@beta.example"]
sender = "+48100200301"
"""


async def test_a_sender_of_one_account_is_refused_from_another_accounts_network(tmp_path: Path) -> None:
    # b / R-8.3: the client network must be trusted by the sender's own account. Beta's mail
    # server may not send for acme's users, though both the network and the sender are known.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, extra=BETA)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.set_account_networks(
                    "acme", add=["127.0.0.1/32"], remove=["127.0.0.0/8"]
                )
            )
            res = await gw.send(mail(to("601123456"), "Through beta's server"), source="127.0.0.2")
            assert code(res) == 550
            assert "5.7.1" in error_text(res) and "Relay access denied: sender not allowed" in error_text(res)
            assert gw.store.admin.count_messages() == 0
            assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
            assert gw.store.db.conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == 0
            # Each account's own pair still works: beta's user from beta's network, anna from acme's.
            bob = mail(to("601123457"), "Beta's own")
            bob.replace_header("From", "bob@beta.example")
            assert (await gw.send(bob, sender="bob@beta.example", source="127.0.0.2")).error is None
            assert (await gw.send(mail(to("601123458"), "Acme's own"))).error is None
            await smsc.wait_for(2)
            assert sorted(s.text for s in smsc.received) == ["Acme's own", "Beta's own"]
            month = datetime.now(ZoneInfo("Europe/Warsaw")).strftime("%Y-%m")
            acme = gw.store.accounts.get_account("acme").id
            assert gw.store.accounts.usage(f"account:{acme}", month) == 1


async def test_quiet_hours_hold_all_mail_of_an_account_marked_bulk(tmp_path: Path) -> None:
    # "the account is marked as sending bulk" holds its mail without any Precedence header.
    tz = ZoneInfo("Europe/Warsaw")
    clock = Clock(datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0))
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, extra=BETA)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account(
                    "acme", bulk=True, quiet_start="21:00", quiet_end="08:00"
                )
            )
            await gw.store.write(  # the same hours on an account not marked bulk: its mail goes
                lambda: gw.store.accounts.update_account("beta", quiet_start="21:00", quiet_end="08:00")
            )
            assert (await gw.send(mail(to("601123456"), "Plain acme mail"))).error is None
            marker = mail(to("601123458"), "Marker")
            marker.replace_header("From", "bob@beta.example")
            assert (await gw.send(marker, sender="bob@beta.example", source="127.0.0.2")).error is None
            await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
            assert [s.text for s in smsc.received] == ["Marker"]
            held = gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'held'").fetchone()[0]
            assert held == 1
            clock.t += 10 * 3600 + 60  # 08:01 the next morning
            gw.daemon.dispatcher.wake()
            await smsc.wait_for(2)
            assert smsc.received[1].text == "Plain acme mail"


@pytest.mark.parametrize("premium", [False, True], ids=["plain", "premium_numbers"])
async def test_info_address_tells_a_sender_off_the_acl_nothing(tmp_path: Path, premium: bool) -> None:
    # only an ACL user learns limits and use. A stranger on a trusted network is refused
    # (at MAIL, or at RCPT where premium answers may come from anywhere) and nothing is queued.
    async with HappySMSC() as smsc:
        extra = '\n[premium]\nnumbers = ["7355"]\n' if premium else ""
        cfg = make_config(tmp_path, smsc_port=smsc.port, extra=extra)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=1000))
            probe = mail(to("info"), "")
            probe.replace_header("From", "eve@evil.example")
            res = await gw.send(probe, [to("info")], sender="eve@evil.example")
            assert code(res) == 550
            said = error_text(res)
            assert "5.7.1" in said and "Relay access denied: sender not allowed" in said
            assert "acme" not in said and "1000" not in said and "limit" not in said.lower()
            assert gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
            assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0
