"""What an expiry says, what a retry past a mail's own expiry does, and the ranges of two settings.

1. A part the daemon had claimed when it was killed (kill -9 while it waited for its link's pacing)
   and whose validity passed during the downtime bounced saying "an earlier attempt went unanswered by
   the SMSC and may have reached the phone", though no SMSC had seen it. Its note now says what is
   known: the gateway stopped while it may have been sending it. A recovered part still in its
   validity is re-sent and logged as a possible duplicate (R-7.5), as before.
2. `smsgw queue retry` (and the panel's Retry) sent an SMS whose mail's Expiry-Date had passed again,
   with an hour's validity, without a word: an expired reminder reached the phone. Refused now,
   naming the date, unless the admin adds --ignore-expiry.
3. `[replies] window_days` took inf and 1e308, `[gateway] validity_hours` and `--validity-hours` took
   1e-9 (every SMS expired at once): one range per setting for the config and the CLI, stated.
4. A long SMS whose every part expired repeated "part N of M: validity period expired …" for each
   part in the reason (queue list, panel, bounce): said once, "all 4 parts: …".

Real peers: the daemon as a process (kill -9) or in this process, mail by a real SMTP client, the
SMPP fake over TCP, a real SMTP server taking the bounces, the CLI as a subprocess, a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from contextlib import closing
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.config import parse_config
from gateway.reasons import human_reason
from gateway.store.db import Store
from gateway.store.partnotes import NEVER_SENT_EXPIRED, NO_LINK_EXPIRED, RECOVERED_EXPIRED
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, send_blocking, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_cli_errors import run, write_config
from tests.test_process import smsgw, start_daemon
from tests.web_helpers import OPERATOR, as_user, csrf_of, password_hash, web_context

MAYBE_REACHED = "may have reached the phone"


def bounce_text(raw: bytes) -> str:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return "\n".join(str(p.get_content()) for p in msg.walk() if p.get_content_type() == "text/plain")


def db_rows(path: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn, conn:
        return conn.execute(sql, args).fetchall()


# ---- 1. kill -9 while parts wait for the link's pacing ------------------------------------------------


async def test_parts_killed_while_paced_and_expired_in_the_downtime_do_not_bounce_as_maybe_delivered(
    tmp_path: Path,
) -> None:
    smsc_port, smtp_port, sink_port = free_port(), free_port(), free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port, relay_port=sink_port)
    config.write_text(text.replace("max_per_second = 1000", "max_per_second = 0.5"))
    dbfile = tmp_path / "state" / "smsgw.db"
    numbers = [f"60112380{i}" for i in range(5)]
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            for n in numbers:
                res = await asyncio.to_thread(
                    send_blocking, smtp_port, mail(f"{n}@{DOMAIN}", f"Paced {n}"), [f"{n}@{DOMAIN}"]
                )
                assert res.error is None
            # Claimed ahead, waiting for the link's rate (one submit each 2 s).
            for _ in range(200):
                active = db_rows(dbfile, "SELECT id, destination FROM parts WHERE state = 'active'")
                if len(smsc.received) >= 1 and len(active) >= 3:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"no parts waiting for pacing: {active}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        sent_before = {s.destination for s in smsc.received}
    active = db_rows(dbfile, "SELECT id, destination FROM parts WHERE state = 'active'")
    unsent = [(pid, dest) for pid, dest in active if str(dest).lstrip("+") not in sent_before]
    assert len(unsent) >= 3, (active, sent_before)
    (kept, kept_to), expired = unsent[0], unsent[1:]
    # Their validity passed while the daemon was down; the first keeps its own.
    past = time.time() - 60
    for pid, _dest in expired:
        db_rows(dbfile, "UPDATE parts SET expires_at = ? WHERE id = ?", (past, pid))
        db_rows(
            dbfile,
            "UPDATE messages SET expires_at = ? WHERE id = (SELECT message_id FROM parts WHERE id = ?)",
            (past, pid),
        )
    async with HappySMSC(port=smsc_port) as smsc, smtp_sink(sink_port) as sink:
        proc = await start_daemon(config, smtp_port)
        try:
            await sink.wait(len(expired), timeout=30)
            await smsc.wait_for(1, timeout=30)
            for _ in range(100):  # the log line of the re-send follows the submit
                if "mt.possible_duplicate" in (tmp_path / "daemon.log").read_text():
                    break
                await asyncio.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        resent = [s.destination for s in smsc.received]
    assert [d.lstrip("+") for d in resent] == [str(kept_to).lstrip("+")]  # the expired ones never went
    ids = tuple(pid for pid, _ in expired)
    notes = db_rows(dbfile, f"SELECT state, error FROM parts WHERE id IN ({','.join('?' * len(ids))})", ids)
    assert notes == [("expired", RECOVERED_EXPIRED)] * len(expired)
    for _from, _to, raw in sink.messages:
        said = bounce_text(raw)
        assert "the gateway stopped while it may have been sending it" in said, said
        assert MAYBE_REACHED not in said and "unanswered by the SMSC" not in said, said
    # the recovered part still in its validity went again, logged as a possible duplicate.
    lines = [
        json.loads(line)
        for line in (tmp_path / "daemon.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert [e["part"] for e in lines if e.get("event") == "mt.possible_duplicate"] == [kept]


def test_the_recovered_expiry_is_worded_in_polish() -> None:
    said = human_reason(RECOVERED_EXPIRED, "pl")
    assert said.startswith("okres ważności minął; doręczenie nieznane: bramka zatrzymała się"), said


# ---- 2. queue retry past the mail's own Expiry-Date -----------------------------------------------------


async def accepted_and_expired(tmp_path: Path, hours_ago: float) -> tuple[Path, int, int]:
    """Two mails the daemon accepted while no SMSC answered, one with an Expiry-Date half an hour after
    it came, both `hours_ago` old and expired since. (config, the one with the date, the other)."""
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    cfg = parse_config(config.read_text(), source="test", base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        soon = mail(
            f"601123900@{DOMAIN}", "Meeting at 10", subject="Soon", Expiry_Date=formatdate(time.time() + 1800)
        )
        assert (await gw.send(soon)).error is None
        assert (await gw.send(mail(f"601123901@{DOMAIN}", "Invoice ready"))).error is None
    shift = hours_ago * 3600
    store = Store.open(cfg.db_path)
    try:
        conn = store.db.conn
        with store.db.transaction():
            conn.execute(
                "UPDATE messages SET created_at = created_at - ?, expires_at = expires_at - ?", (shift, shift)
            )
            conn.execute(
                "UPDATE parts SET next_attempt_at = next_attempt_at - ?, expires_at = expires_at - ?",
                (shift, shift),
            )
        store.queue.expire_due()
        ids = dict(conn.execute("SELECT recipient, id FROM messages"))
        assert [s for (s,) in conn.execute("SELECT state FROM messages")] == ["expired", "expired"]
    finally:
        store.close()
    return config, ids["+48601123900"], ids["+48601123901"]


def message_state(config: Path, mid: int) -> str:
    cfg = parse_config(config.read_text(), source="test", base_dir=config.parent)
    [(state,)] = db_rows(cfg.db_path, "SELECT state FROM messages WHERE id = ?", (mid,))
    return str(state)


async def test_queue_retry_refuses_a_message_past_its_mails_expiry_date_unless_told(tmp_path: Path) -> None:
    config, soon, other = await accepted_and_expired(tmp_path, hours_ago=30)
    res = run(config, "queue", "retry", str(soon))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert f"message {soon} is not sent again: its validity ended at " in res.stderr, res.stderr
    assert "--ignore-expiry" in res.stderr
    assert message_state(config, soon) == "expired"
    # An SMS that ran out of the account's validity is sent again as before.
    res = run(config, "queue", "retry", str(other))
    assert res.returncode == 0 and res.stdout == f"message {other}: 1 part(s) queued again\n", res.stderr
    # The admin insists.
    res = run(config, "queue", "retry", str(soon), "--ignore-expiry")
    assert res.returncode == 0 and res.stdout == f"message {soon}: 1 part(s) queued again\n", res.stderr
    assert message_state(config, soon) == "queued"


async def test_the_panels_retry_says_the_same(tmp_path: Path) -> None:
    config, soon, _other = await accepted_and_expired(tmp_path, hours_ago=30)
    cfg = parse_config(config.read_text(), source="test", base_dir=tmp_path)
    store = Store.open(cfg.db_path)
    store.accounts.add_user(OPERATOR, "acme", password_hash=password_hash())
    store.accounts.set_user(OPERATOR, role="operator")
    store.db.serve()
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, OPERATOR) as c:
            page = (await c.get(f"/messages/{soon}")).text
            r = await c.post(f"/messages/{soon}/retry", data={"csrf": csrf_of(page)})
        assert r.status_code == 409 and "not sent again: its validity ended at" in r.text, r.text
        assert f"queue retry {soon} --ignore-expiry" in r.text, r.text
        assert store.admin.message_info(soon)["state"] == "expired"
    finally:
        web.counts.close()
        store.close()


# ---- 3. one range per setting, for the config and the CLI ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("[replies]\nwindow_days", "inf", "[replies] window_days: must be more than 0 and at most 3650 days"),
        (
            "[replies]\nwindow_days",
            "1e308",
            "[replies] window_days: must be more than 0 and at most 3650 days",
        ),
        ("[gateway]\nvalidity_hours", "1e-9", "[gateway] validity_hours: must be at most 720 hours"),
        ("[gateway]\nvalidity_hours", "0.08", "and at least 0.0834 (5 minutes"),
    ],
)
def test_check_config_refuses_a_value_out_of_range_naming_key_and_range(
    tmp_path: Path, key: str, value: str, said: str
) -> None:
    section, name = key.split("\n")
    text = config_text(tmp_path, smsc_port=free_port())
    if section == "[gateway]":
        text = text.replace("[gateway]\n", f"[gateway]\n{name} = {value}\n", 1)
    else:
        text += f"\n{section}\n{name} = {value}\n"
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    res = smsgw(path, "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert said in res.stderr, res.stderr


def test_the_config_takes_the_ends_of_the_ranges(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        "[gateway]\n", "[gateway]\nvalidity_hours = 0.0834\n", 1
    )
    cfg = parse_config(text + "\n[replies]\nwindow_days = 3650\n", source="t", base_dir=tmp_path)
    assert (cfg.gateway.validity_hours, cfg.replies.window_days) == (0.0834, 3650)


@pytest.fixture
def acme(tmp_path: Path) -> tuple[Path, Path]:
    """A config file and the database of account acme: (config, database)."""
    config = write_config(tmp_path)
    path = tmp_path / "state" / "smsgw.db"
    store = Store.open(path)
    store.accounts.add_account("acme", sender="+48100200300")
    store.close()
    return config, path


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--validity-hours", "1e-9", "at most 720 hours"),
        ("--validity-hours", "0.05", "at least 0.0834 (5 minutes"),
        ("--reply-window-days", "1e308", "more than 0 and at most 3650 days"),
        ("--reply-window-days", "3651", "more than 0 and at most 3650 days"),
        ("--reply-window-days", "inf", "more than 0 and at most 3650 days"),
    ],
)
def test_the_cli_refuses_the_same_values_stating_the_range(
    acme: tuple[Path, Path], option: str, value: str, said: str
) -> None:
    res = run(acme[0], "account", "set", "acme", option, value)
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr, res.stderr
    assert option in res.stderr and said in res.stderr, res.stderr


def test_the_cli_takes_the_ends_of_the_ranges(acme: tuple[Path, Path]) -> None:
    config, db = acme
    res = run(config, "account", "set", "acme", "--validity-hours", "0.0834", "--reply-window-days", "3650")
    assert res.returncode == 0, res.stderr
    [row] = db_rows(db, "SELECT validity_hours, reply_window_days FROM accounts WHERE name = 'acme'")
    assert row == (0.0834, 3650.0)


# ---- 4. a long SMS whose every part expired ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


async def test_an_all_expired_long_sms_says_its_reason_once(tmp_path: Path) -> None:
    sink_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), relay_port=sink_port))  # no SMSC answers
    cfg = parse_config(config.read_text(), source="test", base_dir=tmp_path)
    clock = Clock()
    async with smtp_sink(sink_port) as sink, running_gateway(cfg, clock) as gw:
        assert (await gw.send(mail(f"601123902@{DOMAIN}", "Long news " * 60))).error is None
        [(total,)] = gw.store.db.conn.execute("SELECT parts_total FROM messages")
        assert total >= 3
        clock.skew = 2 * 24 * 3600.0
        await gw.daemon.housekeeping.expire()
        await gw.until(lambda: gw.states() == ["expired"])
        await sink.wait(1)
        [(reason,)] = gw.store.db.conn.execute("SELECT reason FROM messages")
    assert reason == f"all {total} parts: {NO_LINK_EXPIRED}"  # no SMSC answers: the cause the bounce names
    said = bounce_text(sink.messages[0][2])
    assert said.count("validity period expired") == 1 and f"all {total} parts" in said, said
    listed = run(config, "queue", "list")
    assert listed.returncode == 0 and listed.stdout.count("validity period expired") == 1, listed.stdout
    # In Polish too, and once.
    pl = human_reason(reason, "pl")
    link_down = "okres ważności minął, gdy żadne połączenie z operatorem obsługujące ten numer nie działało"
    assert pl == f"wszystkie {total} części: {link_down}", pl
    assert human_reason(f"both parts: {NEVER_SENT_EXPIRED}", "pl").startswith("obie części: okres ważności")


async def test_queue_retry_refuses_a_message_to_a_phone_on_the_opt_out_list(tmp_path: Path) -> None:
    # Accepted before, then sent again: its claim ended it again ("the phone answered with an opt-out
    # word") and its sender got a second bounce for one admin command.
    config, _soon, other = await accepted_and_expired(tmp_path, hours_ago=30)
    assert run(config, "optout", "add", "+48601123901").returncode == 0
    res = run(config, "queue", "retry", str(other))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"message {other} is not sent again: +48601123901 is on the opt-out list since " in res.stderr
    assert "(by an admin); if the phone's owner asked for SMS again, `smsgw optout remove +48601123901`" in (
        res.stderr
    )
    assert message_state(config, other) == "expired"
    assert run(config, "optout", "remove", "+48601123901").returncode == 0
    res = run(config, "queue", "retry", str(other))
    assert res.returncode == 0 and res.stdout == f"message {other}: 1 part(s) queued again\n", res.stderr


async def test_queue_retry_refuses_a_message_of_a_suspended_account(tmp_path: Path) -> None:
    # It said "1 part(s) queued again" and recorded a retry, and the claim held the part again.
    config, _soon, other = await accepted_and_expired(tmp_path, hours_ago=30)
    assert run(config, "account", "suspend", "acme").returncode == 0
    res = run(config, "queue", "retry", str(other))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"message {other} is not sent again: its account acme is suspended" in res.stderr, res.stderr
    assert (
        "`smsgw account resume acme` first (which sends the SMS the suspension held), then retry"
        in res.stderr
    )
    assert message_state(config, other) == "expired"
    assert run(config, "account", "resume", "acme").returncode == 0
    assert run(config, "queue", "retry", str(other)).returncode == 0


async def test_a_retry_before_the_mails_own_expiry_keeps_that_end(tmp_path: Path) -> None:
    # Retried 4 minutes before the mail's Expiry-Date, the SMS got an hour from the retry: the stale
    # "meeting at 10" could still reach the phone up to an hour after the sender's date.
    config, soon, other = await accepted_and_expired(tmp_path, hours_ago=30)
    cfg = parse_config(config.read_text(), source="test", base_dir=tmp_path)
    end = time.time() + 600  # its mail's end, 10 minutes ahead (the SMS ended otherwise: failed)
    with closing(sqlite3.connect(cfg.db_path)) as db, db:
        db.execute("UPDATE messages SET created_at = ?, expires_at = ? WHERE id = ?", (end - 1800, end, soon))
    assert run(config, "queue", "retry", str(soon)).returncode == 0
    assert run(config, "queue", "retry", str(other)).returncode == 0
    rows = dict(db_rows(cfg.db_path, "SELECT id, expires_at FROM messages"))
    assert abs(rows[soon] - end) < 1, rows[soon] - end
    assert [
        e for (e,) in db_rows(cfg.db_path, "SELECT expires_at FROM parts WHERE message_id = ?", (soon,))
    ] == [rows[soon]]
    assert rows[other] > time.time() + 3000  # the other: a new validity from now, as before
