"""A store that refuses writes logs a line a second per kind of failure, not one per failed write.

On a full disk every refused mail logged two error lines (`store.commit_failed`, `smtp.store_failed`),
every receipt a 1.2 kB traceback (`dlr.store_failed`) and every SMSC answer waiting to be written a
warning (`mt.record_retry`): 2,282 lines in 40 s, and journald's rate limit then dropped the rest.
Each line now says how many it stands for (`suppressed`, and a `summary` line once the failures
stop), so the counts add up to what was refused. Real SMTP, a real SMPP peer, the daemon's real
SQLite file: made full as in tests/test_disk_full_health.py, or read-only (`PRAGMA query_only`, which
fails every write as a file system remounted read-only after errors does).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import premium
from gateway.smtp import replies
from smsc.base import ReportStatus
from tests.conftest import free_port, mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_disk_full_health import fill_store
from tests.test_faults import smtp_code, to
from tests.test_premium import CLIENT, World

QUIET = 1.5  # past the throttle's second: the counts still held are logged


def lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == event]


def told(found: list[dict[str, Any]]) -> int:
    """The failures a kind's lines stand for: each line one (a summary none) and those it held back."""
    return sum((0 if e.get("summary") else 1) + e.get("suppressed", 0) for e in found)


async def test_a_full_store_logs_a_line_a_second_per_kind_not_two_per_refused_mail(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
            fill_store(gw)
            msg = mail(to("601123456"), "no room for this " * 90)
            start = time.monotonic()
            for _ in range(20):  # what room the last pages had goes to the first mails
                if smtp_code(await gw.send(msg)) == 452:
                    break
            else:
                pytest.fail("the full store took 20 mails")
            refused = 1
            while time.monotonic() - start < 2.5:
                assert smtp_code(await gw.send(msg)) == 452
                refused += 1
            flooded = time.monotonic() - start
            await asyncio.sleep(QUIET)
    assert refused >= 10, refused
    smtp = lines(logs, "smtp.store_failed")
    # A line a second, and the summary once the flood is over.
    assert len(smtp) <= flooded + 2, [e.get("suppressed", 0) for e in smtp]
    assert told(smtp) == refused
    # The store's own count of failed writes (as /healthz shows it) rides on its lines.
    commits = lines(logs, "store.commit_failed")
    assert len(commits) <= flooded + 2, [e.get("suppressed", 0) for e in commits]
    assert told(commits) == max(e["failures"] for e in commits) >= refused
    assert all("exc_info" not in e for e in smtp + commits)


async def test_receipts_and_answers_a_read_only_store_refuses_log_a_line_a_second(tmp_path: Path) -> None:
    async with HeldSMSC(retry_delay=0.05, max_attempts=3) as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                numbers = [to(f"60112{i:04d}") for i in range(10)]
                assert (await gw.send(mail(numbers, "Held"), numbers)).error is None
                await smsc.wait_for(10)
                ids = [verdict.message_id for _session, _seq, verdict in smsc.held]
                conn = gw.store.db.conn
                conn.execute("PRAGMA query_only = 1")
                start = time.monotonic()
                # The ten answers fail to be written and are tried again 0.5, 1.5 and 3.5 s later.
                smsc.answer(10)
                for message_id in ids:  # each receipt refused three times: the SMSC tries again
                    assert message_id is not None
                    assert await smsc.inject_report(message_id, ReportStatus.DELIVERED)
                await asyncio.sleep(2.5 - (time.monotonic() - start))
                conn.execute("PRAGMA query_only = 0")
                flooded = time.monotonic() - start
                await gw.until(lambda: gw.states() == ["submitted"] * 10, timeout=10)
                await asyncio.sleep(QUIET)
    refusals = [status for kind, status in smsc.stats.deliver_responses if kind == "report" and status]
    assert len(refusals) == 30
    receipts = lines(logs, "dlr.store_failed")
    assert len(receipts) <= flooded + 2, [e.get("suppressed", 0) for e in receipts]
    assert told(receipts) == 30
    # The traceback once, with the first line: not 1.2 kB for each of the 30.
    assert "exc_info" in receipts[0]
    assert all("exc_info" not in e for e in receipts[1:])
    retries = lines(logs, "mt.record_retry")
    assert len(retries) <= flooded + 2, [e.get("suppressed", 0) for e in retries]
    assert told(retries) == 30  # ten answers, each refused at 0, 0.5 and 1.5 s


async def test_premium_answers_a_read_only_store_turns_away_log_a_line_a_second(tmp_path: Path) -> None:
    # A client answering premium SMS while the store refuses writes: each answer got 451 and its own
    # premium.store_failed error line.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 glosuje na A")
    target = premium.target(f"premium-{w.token()}")
    assert target is not None
    raw = f"From: {CLIENT}\r\nSubject: Re: KP123\r\n\r\nDziekujemy za glos\r\n".encode()
    w.store.db.conn.execute("PRAGMA query_only = ON")
    with structlog.testing.capture_logs() as logs:
        for _ in range(50):
            answered = await premium.on_mail(w.store, w.config, target, CLIENT, raw)
            assert answered == (replies.TEMP_FAILURE, False)
        await asyncio.sleep(QUIET)
    found = lines(logs, "premium.store_failed")
    assert 1 <= len(found) <= 3, len(found)
    assert told(found) == 50
    w.store.db.conn.execute("PRAGMA query_only = OFF")
    w.store.close()


async def test_a_stop_during_a_flood_still_says_how_many_were_refused(tmp_path: Path) -> None:
    # The counts a throttle holds are said by its next line or once the failures pause; a daemon
    # stopped within that second lost them, and the log then told of fewer refusals than there were.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
            fill_store(gw)
            msg = mail(to("601123456"), "no room for this " * 90)
            refused = 0
            for _ in range(30):
                refused += smtp_code(await gw.send(msg)) == 452
            # stopped at once, within the throttle's second
    assert refused >= 10, refused
    assert told(lines(logs, "smtp.store_failed")) == refused
