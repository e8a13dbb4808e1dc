"""The daemon's stop ends its waits within one budget, under systemd's TimeoutStopSec (90 s).

Its phases ran one after the other: the intake workers' end (20 s, then their writes 20 s more),
the dispatcher's wait for submits on the wire (the links' response timeout and 1 s), the outbox's
sends (30 s), the links' unbind (15 s each, one link after the other). With a stalled disk they
added up past 90 s, and systemd's SIGKILL cut the stop's last steps. The workers now end beside the
dispatcher's stop, the links unbind together, and each wait takes at most what is left of the
budget (`gateway.stoptiming`), the cut said in the log.
"""

from __future__ import annotations

import asyncio
import email.policy
import signal
import uuid
from pathlib import Path

import structlog

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_process import (
    build_fsynchold,
    open_data,
    smtp_reply,
    start_daemon,
    wait_for_text,
    write_config,
)
from tests.test_stop_in_flight import emails_with, held_env, reap

RCPT = f"601123456@{DOMAIN}"


async def test_the_links_unbind_while_an_intake_worker_still_waits_for_a_held_commit(tmp_path: Path) -> None:
    # F10 with a stalled disk: the fsync of a mail's commit does not return when the daemon is told to
    # stop. Its worker waits for it (up to 18 s); the dispatcher's stop and the links' unbind, which
    # need nothing of that mail, used to begin only after the worker and its writes had ended (38 s
    # here, before the outbox's and the links' own waits).
    shim = build_fsynchold(tmp_path)
    smtp_port = free_port()
    token = f"budget-{uuid.uuid4().hex}"
    text = f"Committed while the links unbind {token}"
    raw = mail(RCPT, text).as_bytes(policy=email.policy.SMTP)
    trigger, marker = tmp_path / "hold-fsync", tmp_path / "fsync-held"
    async with HappySMSC() as smsc:
        config = write_config(tmp_path, smsc.port, smtp_port, intake_processes=1)
        env = held_env(shim, tmp_path, token)
        proc = await start_daemon(config, smtp_port, env=env, new_session=True)
        writer: asyncio.StreamWriter | None = None
        try:
            await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
            reader, writer = await open_data(smtp_port, RCPT)
            trigger.touch()
            writer.write(raw + b".\r\n")
            await writer.drain()
            held = (await asyncio.to_thread(wait_for_text, marker, 20)).split()
            assert held[1].endswith("/smsgw.db-wal"), f"the fsync held is not the WAL's: {held}"
            proc.send_signal(signal.SIGTERM)
            reply = asyncio.ensure_future(smtp_reply(reader))
            # A hang guard, under the 38 s the unbind used to wait for.
            await smsc.wait_until(lambda: not smsc.sessions, timeout=30)
            assert not reply.done(), f"answered {reply.result()!r} while its commit was held"
            trigger.unlink()
            assert (await asyncio.wait_for(reply, 20)).startswith(b"250")
            assert await asyncio.to_thread(proc.wait, 60) == 0
        finally:
            if writer is not None:
                writer.close()
            await reap(proc, trigger, smtp_port)
    assert emails_with(tmp_path / "state" / "smsgw.db", text) == 1


async def test_a_wait_past_the_stop_budget_is_cut_and_said(tmp_path: Path) -> None:
    # A link's response timeout of 60 s: the dispatcher's own wait for a submit on the wire (61 s),
    # then the outbox's and the links', passed the 90 s alone. The budget is made 2 s here.
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace(
            "response_timeout_seconds = 5\n", "response_timeout_seconds = 60\n"
        )
        cfg = parse_config(text, source="test", base_dir=tmp_path)
        assert cfg.smsc[0].response_timeout_seconds == 60
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(RCPT, "On the wire at the stop"))).error is None
            await smsc.wait_for(1, timeout=20)  # taken by the SMSC, never answered
            gw.daemon.stop_budget = 2.0
            with structlog.testing.capture_logs() as logs:
                gw.stop.set()
                done, _ = await asyncio.wait({gw.task}, timeout=20)  # a hang guard, ten times the budget
            assert done, "the stop still waits for the submit past its budget"
            gw.task.result()
    cut = [e["wait"] for e in logs if e["event"] == "daemon.stop_budget_cut"]
    assert cut and cut[0] == "dispatcher", cut


async def test_a_stop_with_no_late_answer_waiting_says_no_cut_of_its_wait(tmp_path: Path) -> None:
    # Every stop whose budget ran short logged daemon.stop_budget_cut for "late answers", the wait for
    # submits answered after their time, though none was waiting: the admin read of work given up on
    # that did not exist. The budget is made 0 here: every wait that is made is cut.
    async with HappySMSC() as smsc:
        cfg = parse_config(config_text(tmp_path, smsc_port=smsc.port), source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(RCPT, "Answered before the stop"))).error is None
            await smsc.wait_for(1, timeout=20)
            gw.daemon.stop_budget = 0.0
            with structlog.testing.capture_logs() as logs:
                gw.stop.set()
                done, _ = await asyncio.wait({gw.task}, timeout=20)  # a hang guard
            assert done, "the stop did not end"
            gw.task.result()
    cut = [e["wait"] for e in logs if e["event"] == "daemon.stop_budget_cut"]
    assert "dispatcher" in cut and "late answers" not in cut, cut
