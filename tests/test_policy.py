"""Who may send how much: limits, info@, anti-spam rules, opt-outs, quiet hours, suspension (R-2.2–R-2.4).

All through real SMTP sessions against a running gateway and a fake SMSC; assertions on the store.
"""

from __future__ import annotations

import asyncio
import email
import os
import time
from datetime import datetime
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import parse_config
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw


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


async def test_fourth_identical_text_hours_later_the_same_day_is_refused_and_goes_the_next_day(
    tmp_path: Path,
) -> None:
    # F13 "on the same day": the count spans the whole day ([gateway] timezone), not a recent
    # window. Sent one a minute apart, the four identical mails of the test above say nothing of
    # mails hours apart: at 08:00, 09:00, 10:00 and 11:00 the fourth is refused 5.7.x; the next
    # morning the same text goes again.
    tz = ZoneInfo("Europe/Warsaw")
    now = [datetime(2026, 3, 10, 8, 0, tzinfo=tz).timestamp()]
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port), lambda: now[0]) as gw,
    ):
        results = []
        for hour in (8, 9, 10, 11):
            now[0] = datetime(2026, 3, 10, hour, 0, tzinfo=tz).timestamp()
            msg = mail(to("601123456"), "Buy now!", Message_ID=f"<hourly-{hour}@acme.example>")
            results.append(await gw.send(msg))
        assert [r.error is None for r in results] == [True, True, True, False]
        assert code(results[3]) == 550 and error_text(results[3]).startswith("5.7.")
        assert "identical" in error_text(results[3])
        await smsc.wait_for(3)
        now[0] = datetime(2026, 3, 11, 8, 0, tzinfo=tz).timestamp()
        next_day = mail(to("601123456"), "Buy now!", Message_ID="<next-day@acme.example>")
        assert (await gw.send(next_day)).error is None
        await smsc.wait_for(4)
        assert [s.text for s in smsc.received] == ["Buy now!"] * 4


async def test_fourth_identical_text_to_a_number_is_refused(tmp_path: Path) -> None:
    # F13: three identical SMS to one number in a day go; the fourth (new Message-ID) is refused.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        results = []
        for i in range(4):
            results.append(
                await gw.send(mail(to("601123456"), "Buy now!", Message_ID=f"<spam-{i}@acme.example>"))
            )
        assert [r.error is None for r in results] == [True, True, True, False]
        assert code(results[3]) == 550 and "identical" in error_text(results[3])
        other = await gw.send(mail(to("601123457"), "Buy now!"))
        assert other.error is None  # the rule is per number
        await smsc.wait_for(4)
        # A group mail with that number among others: refused whole, the others got nothing. Now
        # only that number is left out, and the sender is told which (once, not at each retry).
        group = [to("601123456"), to("601123458"), to("601123459")]
        msg = mail(group, "Buy now!", Message_ID="<group@acme.example>")
        for _ in range(2):
            assert (await gw.send(msg, group)).error is None
        await smsc.wait_for(6)
        await asyncio.sleep(0.3)
        assert sorted(s.destination for s in smsc.received[4:]) == ["+48601123458", "+48601123459"]
        told = gw.store.db.conn.execute("SELECT rcpt, content FROM outbox WHERE kind = 'not-sent'").fetchall()
        assert len(told) == 1 and told[0][0] == STAFF
        notice = email.message_from_bytes(told[0][1], policy=policy.default)
        assert "+48601123456" in notice["Subject"] and "identical" in notice.get_content()
        # The same mail split by the client into transactions (Postfix: 50 recipients each): the
        # one holding only the blocked number is refused, as a mail of its own would be; it was
        # answered 250 and nobody heard of it.
        res = await gw.send(msg, [to("601123456")])
        assert code(res) == 550 and "identical" in error_text(res)
        # With confirmations on, the confirmation names only the numbers sent.
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
        both = [to("601123456"), to("601123460")]
        assert (await gw.send(mail(both, "Buy now!"), both)).error is None
        confirmations = gw.store.db.conn.execute(
            "SELECT content FROM outbox WHERE kind = 'confirmation' ORDER BY id"
        ).fetchall()
        said = email.message_from_bytes(confirmations[-1][0], policy=policy.default).get_content()
        assert "+48601123460" in said and "+48601123456" not in said, said


async def test_a_subject_does_not_let_a_fourth_identical_text_through(tmp_path: Path) -> None:
    # A Reply (RE:) to a phone with the subject of the conversation loses its subject (it is an
    # answer in that conversation): the first SMS read "Hi: same text", the next three "same
    # text", and the rule saw two different texts, so four went and the fifth was refused.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        sent = []
        conn = gw.store.db.conn
        submitted = "SELECT COUNT(submitted_at) FROM parts"
        for i in range(4):
            subject = "RE: Hi" if i else "Hi"
            msg = mail(to("601300001"), "same text", subject=subject, Message_ID=f"<same-{i}@acme.example>")
            sent.append(await gw.send(msg))
            # The subject is left out once an SMS under it reached the phone: each before the next mail.
            went = min(i + 1, 3)
            await gw.until(lambda n=went: conn.execute(submitted).fetchone()[0] >= n)
        assert [r.error is None for r in sent] == [True, True, True, False]
        assert code(sent[3]) == 550 and "identical" in error_text(sent[3])
        await smsc.wait_for(3)
        assert [s.text for s in smsc.received] == ["Hi: same text", "same text", "same text"]


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


async def test_account_with_many_failures_is_suspended_until_resumed(tmp_path: Path) -> None:
    # over the failure share, the account stops sending until an admin resumes it.
    async with HappySMSC(fail_suffixes=["13"]) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, suspend_after=4, suspend_failed_share=0.5)
        async with running_gateway(cfg) as gw:
            for i in range(4):
                await gw.send(mail(to(f"60112{i}413"), f"Fails {i}"))
            await gw.until(lambda: gw.store.accounts.get_account("acme").suspended_at is not None)
            res = await gw.send(mail(to("601123456"), "Blocked"))
            assert code(res) == 550 and "suspended" in error_text(res)
            await gw.store.write(
                lambda: gw.store.policy.resume_account(gw.store.accounts.get_account("acme").id)
            )
            res = await gw.send(mail(to("601123456"), "Allowed again"))
            assert res.error is None


def finished(store: Any, states: list[str]) -> None:
    """Acme's earlier messages, finished in `states` (oldest first)."""
    acme = store.accounts.get_account("acme").id
    with store.db.transaction():
        for n, state in enumerate(states):
            email = store.db.conn.execute(
                "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?, 'a@b.c', 'x', 1)",
                (acme,),
            ).lastrowid
            store.db.conn.execute(
                "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
                " state, created_at, expires_at) VALUES (?, ?, ?, '+48100200300', 'x', 0, 1, ?, 1, 2)",
                (email, acme, f"+4860190{n:04d}", state),
            )


@pytest.mark.parametrize(
    ("earlier", "suspended"),
    [
        # 16 of 500 fail (3 %), 11 of the last 50 among them: under the first rule (over 50) suspended.
        (
            ["delivered"] * 44 + ["failed"] * 5 + ["delivered"] * 436 + ["failed"] * 10 + ["delivered"] * 4,
            False,
        ),
        # A spam list: 50 failures among 55, stopped at the next one, long before 500 messages.
        (["failed", "delivered"] * 5 + ["failed"] * 45, True),
    ],
    ids=["stale-contacts", "spam-list"],
)
async def test_the_failure_share_is_judged_over_500_messages(
    tmp_path: Path, earlier: list[str], suspended: bool
) -> None:
    # with the defaults (more than 10 % of the last 500 failed): an account whose numbers
    # fail 2-3 % of the time (stale contacts) was suspended about daily over a window of 50.
    async with HappySMSC(fail_suffixes=["13"]) as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            await gw.store.write(lambda: finished(gw.store, earlier))
            assert (await gw.send(mail(to("601120413"), "Fails"))).error is None
            await gw.until(lambda: gw.states()[-1] == "failed")
            await gw.store.drain()
            assert (gw.store.accounts.get_account("acme").suspended_at is not None) is suspended


def share_steps(tmp_path: Path, name: str, states: list[str]) -> tuple[int, tuple[int, int]]:
    """(SQLite VM steps / 100, verdict) of one `failure_share` over acme's messages in `states`:
    counted in VM instructions, which do not depend on the machine's speed."""
    from gateway.store.db import Store
    from tests.test_store import Clock, vm_steps

    s = Store.open(tmp_path / name, clock=Clock())
    s.accounts.add_account("acme")
    finished(s, states)
    acme = s.accounts.get_account("acme").id
    count, share = vm_steps(s.db.conn, lambda: s.policy.failure_share(acme, 500))
    s.close()
    return count, share


def test_the_failure_share_does_not_walk_the_accounts_waiting_messages(tmp_path: Path) -> None:
    # Judged at every failed SMS: with a campaign of 100k queued for the account, one range of
    # (account, id) walked past every waiting message to find 500 finished ones, 73 ms a failure,
    # enough to stall the gateway at a few failures a second. Counted in SQLite VM instructions,
    # which do not depend on the machine's speed.
    def steps(waiting: int, name: str) -> tuple[int, tuple[int, int]]:
        return share_steps(
            tmp_path, name, ["queued"] * waiting + ["delivered"] * 30 + ["failed"] * 5 + ["queued"] * waiting
        )

    small, small_share = steps(10, "small.sqlite")
    large, large_share = steps(5000, "large.sqlite")
    assert small_share == large_share == (5, 35)
    assert large < 2 * small + 20, (small, large)


def test_the_failure_share_does_not_walk_the_accounts_sms_expired_in_the_queue(tmp_path: Path) -> None:
    # SMS that expired before an SMSC took them are not judged, so the expired arm found none among
    # them and walked every one the retention keeps (an outage's worth: 15,000 of 500,000 messages
    # made 0.4 M VM steps a failed SMS in bench/statements.py --history 500000), at every failure.
    def steps(expired: int, name: str) -> tuple[int, tuple[int, int]]:
        return share_steps(tmp_path, name, ["expired"] * expired + ["delivered"] * 500 + ["failed"] * 5)

    small, small_share = steps(10, "small.sqlite")
    large, large_share = steps(5000, "large.sqlite")
    assert small_share == large_share == (5, 500)
    assert large < 2 * small + 20, (small, large)


async def test_an_smsc_outage_longer_than_the_validity_suspends_no_account(tmp_path: Path) -> None:
    # SMS that expired in the gateway's queue, no SMSC having taken a part of them, counted as the
    # account's failed deliveries: an outage longer than the validity suspended every account
    # that sent meanwhile, and each needed `account resume`.
    clock = Clock(datetime.now(ZoneInfo("Europe/Warsaw")))
    cfg = make_config(tmp_path, smsc_port=free_port(), suspend_after=4, suspend_failed_share=0.5)
    async with running_gateway(cfg, clock) as gw:
        for i in range(5):
            assert (await gw.send(mail(to(f"60112{i}456"), f"Outage {i}"))).error is None
        clock.t += 3 * 24 * 3600
        await gw.daemon.housekeeping.expire()
        assert gw.states() == ["expired"] * 5
        await asyncio.sleep(0.2)
        assert gw.store.accounts.get_account("acme").suspended_at is None


async def test_a_suspension_holds_the_sms_already_waiting_and_a_resume_releases_them(tmp_path: Path) -> None:
    # Defect: suspending only refused new mail; a bulk SMS held for quiet hours (or the rest of a
    # campaign in the queue) still went out after `smsgw account suspend`.
    tz = ZoneInfo("Europe/Warsaw")
    clock = Clock(datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0))
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port)
        path = tmp_path / "config.toml"
        path.write_text(text)
        cfg = parse_config(text, source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg, clock) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
            )
            await gw.send(mail(to("601123456"), "Newsletter", Precedence="bulk"))
            done = await asyncio.to_thread(smsgw, path, "account", "suspend", "acme", "--reason", "spam")
            assert done.returncode == 0, done.stderr
            assert "1 waiting message(s) held" in done.stdout
            states = lambda: gw.store.db.conn.execute(  # noqa: E731
                "SELECT m.state, p.state FROM messages m JOIN parts p ON p.message_id = m.id"
            ).fetchall()
            assert states() == [("hold", "hold")]
            clock.t += 10 * 3600 + 60  # 08:01: the quiet hours are over, the suspension is not
            gw.daemon.dispatcher.wake()
            await asyncio.sleep(0.3)
            assert smsc.received == [] and states() == [("hold", "hold")]
            done = await asyncio.to_thread(smsgw, path, "account", "resume", "acme")
            assert done.returncode == 0, done.stderr
            assert "1 held message(s) go again" in done.stdout
            gw.daemon.dispatcher.wake()
            await smsc.wait_for(1)
            assert smsc.received[0].text == "Newsletter"
            await gw.until(lambda: gw.states() == ["delivered"])


async def test_a_resumed_account_is_judged_only_by_messages_after_the_resume(tmp_path: Path) -> None:
    # Defect: the share still counted the failures the admin had just looked at, so the first
    # failure after `smsgw account resume` suspended the account again (and mailed the admin again).
    async with HappySMSC(fail_suffixes=["13"]) as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, suspend_after=4, suspend_failed_share=0.5)
        path = tmp_path / "config.toml"
        path.write_text(text)
        async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
            acme = lambda: gw.store.accounts.get_account("acme")  # noqa: E731
            suspensions = lambda: gw.store.db.conn.execute(  # noqa: E731
                "SELECT COUNT(*) FROM outbox WHERE kind = 'suspended'"
            ).fetchone()[0]
            for i in range(4):
                await gw.send(mail(to(f"60112{i}413"), f"Fails {i}"))
            await gw.until(lambda: acme().suspended_at is not None)
            done = await asyncio.to_thread(smsgw, path, "account", "resume", "acme")
            assert done.returncode == 0, done.stderr
            assert (await gw.send(mail(to("601125413"), "Fails after the resume"))).error is None
            await gw.until(lambda: gw.states()[-1] == "failed")
            assert acme().suspended_at is None and suspensions() == 1
            # Judged afresh, the rule still holds: three failures since the resume, more than half of 4.
            for i in range(6, 9):
                await gw.send(mail(to(f"60112{i}413"), f"Fails again {i}"))
            await gw.until(lambda: acme().suspended_at is not None)
            assert "3 of its last 3 messages failed" in (acme().suspended_reason or "") and suspensions() == 2


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
