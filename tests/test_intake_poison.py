"""An intake worker against hostile mail and a daemon that stands still: real daemon processes with
one intake worker, real SMTP clients, a real SMPP peer.

A mail of many tiny MIME parts held the worker's loop for seconds (at 10 MB past the 30 s after which
the daemon kills it as silent, with every other session on it, again at each retry); a daemon stopped
past the worker's wait had its client told `451` for a mail it then sent; a worker's death was logged
with a traceback of the daemon's own `raise`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import smtplib
import time
from pathlib import Path

import pytest

from gateway.smtp import mimebound
from gateway.smtp.intake import IntakeRefused, read_mail
from tests.conftest import DOMAIN, STAFF, free_port, mail, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config_text, worker_pids
from tests.test_process import start_daemon


def parts_mail(parts: int) -> bytes:
    body = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(parts)) + b"--B--\r\n"
    head = f"From: {STAFF}\r\nTo: 601123456@{DOMAIN}\r\nSubject: Parts\r\nMIME-Version: 1.0\r\n"
    return (head + "Content-Type: multipart/mixed; boundary=B\r\n\r\n").encode() + body


@pytest.mark.parametrize(
    "raw",
    [
        parts_mail(26_000),  # 1.4 s of the parser
        # 7 s: each continuation line joined to the field's value so far
        f"From: {STAFF}\r\nSubject: Folded\r\nX-Long: a".encode() + b"\r\n a" * 250_000 + b"\r\n\r\nHi\r\n",
    ],
    ids=["parts", "folded"],
)
def test_a_hostile_shape_costs_the_reader_milliseconds(raw: bytes) -> None:
    # The reading's own CPU, not the wall clock: on a loaded machine the wall clock counted other
    # processes' turns (0.66 s). Tens of ms here; the shapes cost seconds before.
    started = time.thread_time()
    with contextlib.suppress(IntakeRefused):
        read_mail(raw)
    assert time.thread_time() - started < 0.5


def config_with(tmp_path: Path, smsc_port: int, smtp_port: int, smtp_lines: str) -> Path:
    path = tmp_path / "config.toml"
    text = worker_config_text(tmp_path, smsc_port, smtp_port, 1)
    path.write_text(text.replace("[smtp]\n", f"[smtp]\n{smtp_lines}\n"))
    return path


async def test_a_mail_of_many_tiny_parts_is_refused_at_once_naming_client_and_sender(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(config_with(tmp_path, smsc.port, smtp_port, ""), smtp_port)
        try:
            raw = parts_mail(26_000)  # under 1 MiB, the shipped size limit
            res = await asyncio.to_thread(send_blocking, smtp_port, raw, [f"601123456@{DOMAIN}"])
            assert isinstance(res.error, smtplib.SMTPDataError), res
            assert f"{res.error.smtp_code} {res.error.smtp_error.decode()}" == mimebound.TOO_MANY_PARTS
            (refused,) = log_events(tmp_path, "intake.mime_refused")
            assert (refused["ip"], refused["sender"]) == ("127.0.0.1", STAFF)
            # A mail of a thousand parts is no hostile one: read and sent.
            ok = await asyncio.to_thread(send_blocking, smtp_port, parts_mail(1000), [f"601123456@{DOMAIN}"])
            assert ok.error is None, ok
            await smsc.wait_for(1, timeout=20)
            assert not log_events(tmp_path, "worker.crashed")
        finally:
            await stop(proc)


async def test_a_daemon_stopped_past_the_wait_gets_its_client_no_reply_and_its_retry_one_sms(
    tmp_path: Path,
) -> None:
    # The daemon's loop stood still (SIGSTOP here; frozen or starved in life) past the worker's wait
    # (8 s) and the withdrawal's (1.5 s): the client heard 451 and the daemon, continued, sent the
    # SMS; a retry of the mail without a Message-ID (a script's) made a second one. The connection
    # now closes unanswered, and the daemon, continued, honours the withdrawal it then reads.
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(
            config_with(tmp_path, smsc.port, smtp_port, "timeout_seconds = 10"), smtp_port
        )
        msg = mail(f"601123456@{DOMAIN}", "While the daemon stood still")  # no Message-ID
        try:
            # Stopped when idle, its start's writes and checkpoint done (a checkpoint stopped midway
            # would hold the WAL index, and the worker's reads would wait on it).
            await until(lambda: log_events(tmp_path, "daemon.ready"), "the start banner")
            await asyncio.sleep(1)
            proc.send_signal(signal.SIGSTOP)
            try:
                frozen = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])
            finally:
                proc.send_signal(signal.SIGCONT)
            assert isinstance(frozen.error, smtplib.SMTPServerDisconnected), frozen
            assert log_events(tmp_path, "intake.write_outcome_unknown")
            await until(lambda: log_events(tmp_path, "intake.accept_withdrawn"), "the withdrawal read")
            again = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])
            assert again.error is None, again
            await smsc.wait_for(1, timeout=20)
            await asyncio.sleep(1.5)  # a second SMS would be on its way by now
            assert len(smsc.received) == 1
        finally:
            await stop(proc)


async def test_a_daemon_back_within_the_withdrawal_takes_the_mail_back_and_the_client_hears_451(
    tmp_path: Path,
) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(
            config_with(tmp_path, smsc.port, smtp_port, "timeout_seconds = 20"), smtp_port
        )
        msg = mail(f"601123456@{DOMAIN}", "Taken back")  # no Message-ID
        try:
            await until(lambda: log_events(tmp_path, "daemon.ready"), "the start banner")
            await asyncio.sleep(1)
            proc.send_signal(signal.SIGSTOP)
            try:
                sending = asyncio.create_task(
                    asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])
                )
                # The worker asks for the mail back after 16 s, and waits 3 s more.
                await until(
                    lambda: log_events(tmp_path, "intake.daemon_not_answering"), "the withdrawal", 500
                )
            finally:
                proc.send_signal(signal.SIGCONT)
            frozen = await asyncio.wait_for(sending, 30)
            assert isinstance(frozen.error, smtplib.SMTPDataError), frozen
            assert (frozen.error.smtp_code, frozen.error.smtp_error[:5]) == (451, b"4.3.0")
            await asyncio.sleep(2)
            assert smsc.received == []  # nothing of the mail was written
            again = await asyncio.to_thread(send_blocking, smtp_port, msg, [f"601123456@{DOMAIN}"])
            assert again.error is None, again
            await smsc.wait_for(1, timeout=20)
            await asyncio.sleep(1.5)
            assert len(smsc.received) == 1
        finally:
            await stop(proc)


async def test_a_killed_worker_is_one_plain_line_with_its_signal_and_no_traceback(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(config_with(tmp_path, smsc.port, smtp_port, ""), smtp_port)
        try:
            await until(lambda: worker_pids(tmp_path), "the worker's pid")
            (first,) = worker_pids(tmp_path)
            os.kill(first, signal.SIGKILL)
            await until(lambda: len(worker_pids(tmp_path)) == 2, "the restarted worker")
            (crash,) = log_events(tmp_path, "worker.crashed")
            assert (crash["pid"], crash["signal"], crash["worker"]) == (first, "SIGKILL", "intake-1")
            assert "retry_in" in crash and "exception" not in crash and "exc_info" not in crash
        finally:
            await stop(proc)
