"""A refused mail of kept answers (SPEC R-3), sent after all on `smsgw outbox retry`: each answer told
it was mailed, the others told when the first answer was purged, and on to the fallback address when
refused again. Through the daemon, its built-in SMSC and a refusing relay on an injected clock; split
from test_kept_answers.py by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.web.counts import count
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_account_show import CLI
from tests.test_kept_answers import T0, answer, flood_config, states
from tests.test_reply_refused import RefusingRelay
from tests.test_two_way import parsed

# ---- a refused mail of kept answers, sent after all on `smsgw outbox retry` ---------------------


async def kept_mail_refused(gw: Any, relay: RefusingRelay, now: list[float]) -> None:
    """Anna's first answer mailed; her mailbox then gone (550 at RCPT), three more answers kept past
    the hourly limit, and their mail refused for good: each answer reached nobody."""
    conn = gw.store.db.conn
    assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
    await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
    await answer(gw, "ok")
    await relay.wait(1)
    relay.gone.add(STAFF.casefold())  # her mailbox is gone
    for n in range(3):
        now[0] += 60
        await answer(gw, f"answer {n}")
    assert states(gw) == ["mailed"] + ["throttled"] * 3
    now[0] += 3601
    await gw.until(
        lambda: conn.execute("SELECT state FROM outbox WHERE kind = 'reply-kept'").fetchall() == [("failed",)]
    )
    assert states(gw) == ["mailed"] + ["failed"] * 3


class Retried(NamedTuple):
    refused: list[str]  # the answers' notes when the mail was refused
    notes: list[str]  # and after the retry sent it
    states: list[str]
    counted: dict[str, int]
    relay: RefusingRelay


async def refused_then_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], purged: bool
) -> Retried:
    """The mail of three kept answers refused (Anna's mailbox gone, no fallback), her mailbox made
    again and `smsgw outbox retry --all` run; with `purged`, the retention purge deleted the mail's
    first answer (the oldest) in between."""
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    cfg = flood_config(tmp_path, port, "mails_per_phone_per_hour = 1")
    cli_config = tmp_path / "cli.toml"
    cli_config.write_text(config_text(tmp_path, smsc_port=free_port()))  # the same state_dir
    relay = RefusingRelay()
    kept_mail = "SELECT state FROM outbox WHERE kind = 'reply-kept'"
    kept = "SELECT note FROM mo WHERE id > ? ORDER BY id"
    first = 2 if purged else 1  # the answers' MOs after the one mailed and, if purged, the first kept
    async with smtp_sink(port, relay):
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await kept_mail_refused(gw, relay, now)
            refused = [n for (n,) in conn.execute(kept, (first,))]
            if purged:
                await gw.store.write(lambda: conn.execute("DELETE FROM mo WHERE id = 2"))
        relay.gone.clear()  # made again
        assert CLI(cli_config, capsys).ok("outbox", "retry", "--all")[0].startswith("1 mail(s)")
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await gw.until(lambda: conn.execute(kept_mail).fetchall() == [("sent",)])
            notes = [n for (n,) in conn.execute(kept, (first,))]
            return Retried(refused, notes, states(gw), dict(count(conn).mo), relay)


async def test_a_refused_mail_of_kept_answers_sent_on_a_retry_tells_each_answer_it_was_mailed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anna's mailbox was gone when the mail of three kept answers came (550 at RCPT, no fallback):
    # each said it reached nobody. Her mailbox made again, the admin ran `smsgw outbox retry` and
    # the mail went, but only its first answer turned `mailed`: the other two stayed `failed` in
    # her history, `smsgw conversation`, the panel and /metrics, though she had them.
    got = await refused_then_retried(tmp_path, monkeypatch, capsys, purged=False)
    assert all(n.startswith("kept past the hourly limit") and "550 5.1.1" in n for n in got.refused)
    assert got.states == ["mailed"] * 4
    assert got.notes == [f"{n}; mailed to {STAFF} after all, on a retry" for n in got.refused]
    assert got.counted["failed"] == 3 and got.counted["mailed"] >= 4  # the counters did not fall
    body = parsed(got.relay.messages[-1][2]).get_content()
    assert all(f"\nanswer {n}\n" in body or body.endswith(f"\nanswer {n}") for n in range(3))


async def test_a_retried_mail_of_kept_answers_whose_first_answer_was_purged_tells_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The retention purge deleted the mail's first answer (the oldest) before `smsgw outbox retry`
    # sent it: the others were found by that answer's phone alone, so none of them turned `mailed`.
    got = await refused_then_retried(tmp_path, monkeypatch, capsys, purged=True)
    assert got.states == ["mailed"] * 3
    assert got.notes == [f"{n}; mailed to {STAFF} after all, on a retry" for n in got.refused]


async def test_a_refused_mail_of_kept_answers_whose_first_answer_was_purged_goes_on_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Greylisted, then refused for good once the purge had deleted its first answer: the refusal
    # found no answers by that answer's phone, sent no copy to the fallback address, and the other
    # answers said they were mailed to a user who never had them.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    ops = "ops@gateway.example"
    cfg = flood_config(tmp_path, port, f'mails_per_phone_per_hour = 1\nfallback_address = "{ops}"')
    relay = RefusingRelay()
    kept_mail = "SELECT state FROM outbox WHERE kind = 'reply-kept'"
    async with smtp_sink(port, relay), running_gateway(cfg, lambda: now[0]) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
        await answer(gw, "ok")
        await relay.wait(1)
        relay.gone.add(STAFF.casefold())
        relay.later = True  # greylisted: the mail stays queued
        for n in range(3):
            now[0] += 60
            await answer(gw, f"answer {n}")
        now[0] += 3601
        await gw.until(lambda: relay.refused != [])
        assert states(gw) == ["mailed"] * 4
        await gw.store.write(lambda: conn.execute("DELETE FROM mo WHERE id = 2"))  # as the purge does
        relay.later = False  # now refused for good
        now[0] += 86400
        await gw.until(lambda: conn.execute(kept_mail).fetchall() == [("failed",)])
        await relay.wait(2)
        assert states(gw) == ["mailed", "fallback", "fallback"]
        notes = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 2 ORDER BY id")]
        assert all("550 5.1.1" in n and f"sent to {ops}" in n for n in notes), notes
    [(_, rcpts, raw)] = relay.messages[1:]
    assert rcpts == [ops]
    body = parsed(raw).get_content()
    assert "\nanswer 1\n" in body and "answer 2" in body and "answer 0" not in body
