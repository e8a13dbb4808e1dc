# ruff: noqa: F811  (the tests take test_session_limits's `tls_pair` fixture, imported by name)
"""Mail bodies under the session limits, over raw sockets: a body still arriving is not cut at the idle
timeout but one trickling in past the bound of a mail is, strangers' bodies held at once are bounded
(customers' not counted), and a body cut off by a lost connection is freed at once. Split from
test_session_limits.py by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import structlog

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway
from tests.test_session_limits import (
    RCPT,
    answered,
    at_data,
    blocking,
    dial,
    last_reply,
    read_reply,
    tls_pair,  # noqa: F401  (the fixture)
)
from tests.test_spec_smtp_postmaster import open_text
from tests.test_submission import submission_config


def slow_body(port: int, pieces: int) -> tuple[str, str]:
    """A mail whose body comes in small pieces 0.2 s apart: the reply to DATA, and to its end."""
    s, start = at_data(port)
    with s:
        try:
            s.sendall(b"Subject: slow uplink\r\n\r\n")
            for _ in range(pieces):
                time.sleep(0.2)
                s.sendall(b"Board at 9 \r\n")
            s.sendall(b".\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return start, read_reply(s)


async def test_a_body_still_arriving_is_not_cut_at_the_idle_timeout(tmp_path: Path, tls_pair: Any) -> None:
    # The idle time ran from the DATA command: a body sent from a slow uplink, never silent for long,
    # was cut when it had taken longer than `timeout_seconds` in all, and again at every retry.
    cfg = submission_config(tmp_path, 1, tls_pair, timeout_seconds=0.5)
    async with running_gateway(cfg) as gw:
        answers = await blocking(lambda: slow_body(gw.port, 8))  # 1.6 s of pieces 0.2 s apart
        taken = gw.store.admin.count_messages()
    assert answers[0].startswith("354") and answers[1].startswith("250"), answers
    assert taken == 1


async def test_a_body_trickling_in_past_the_bound_of_a_mail_is_cut(tmp_path: Path, tls_pair: Any) -> None:
    # Each piece moves the idle deadline, but the whole body must come within the guard's bound, or a
    # byte now and then would hold a slot (a session in DATA never gives way) for ever.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            gw.daemon.gate.sessions.max_data_seconds = 0.5
            answers = await blocking(lambda: slow_body(gw.port, 8))
            taken = gw.store.admin.count_messages()
    assert answers == (answers[0], replies.DATA_TOO_SLOW) and answers[0].startswith("354")
    assert taken == 0
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["data_time"]


def stranger_in_data(port: int) -> socket.socket:
    """A stranger's mail to postmaster (MAIL lets anyone through once premium numbers exist), at 354."""
    s, reply = at_data(port, "127.0.0.2", sender="someone@elsewhere.example", rcpt=f"postmaster@{DOMAIN}")
    assert reply.startswith("354")
    return s


async def test_strangers_bodies_held_at_once_are_bounded_and_customers_are_not_counted(
    tmp_path: Path,
) -> None:
    # Each stranger in DATA held up to ~2.5 times max_message_bytes until its dot: 45 sessions from
    # one address held 110 MiB, 500 over a gigabyte. Past the strangers' budget the one whose bytes
    # went over hears 421 and goes; a customer's mail is not counted and the others still end well.
    cfg = open_text(tmp_path, free_port())
    piece = b"x" * 30_000 + b"\r\n"
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            gw.daemon.gate.sessions.stranger_data_budget = 64_000

            def session() -> list[str]:
                customer = dial(gw.port)
                read_reply(customer)
                for line in (b"EHLO x", b"MAIL FROM:<%s>" % STAFF.encode(), b"RCPT TO:<%s>" % RCPT.encode()):
                    customer.sendall(line + b"\r\n")
                    while read_reply(customer).startswith("250-"):
                        pass
                customer.sendall(b"DATA\r\n")
                read_reply(customer)
                letter = mail(RCPT, "Board at 9")
                letter.add_attachment(b"\0" * 75_000, maintype="application", subtype="octet-stream")
                customer.sendall(letter.as_bytes().replace(b"\n", b"\r\n"))  # 100 kB, not counted
                strangers = [stranger_in_data(gw.port) for _ in range(3)]
                try:
                    for s in strangers:  # 90 kB in all: whichever's bytes pass 64 kB is cut
                        s.sendall(b"Subject: hello\r\n\r\n" + piece)
                    while not any(answered(s) for s in strangers):
                        time.sleep(0.05)  # until the one that went over has heard 421
                    cut = [s for s in strangers if answered(s)]
                    for s in strangers:
                        if s not in cut:  # a write to the cut one would reset it, its 421 and all
                            s.sendall(b".\r\n")
                    answers = sorted(last_reply(s) if s in cut else read_reply(s) for s in strangers)
                    customer.sendall(b".\r\n")
                    answers.append(read_reply(customer))
                    later = stranger_in_data(gw.port)  # the cut one's bytes were given back
                    later.sendall(b"Subject: again\r\n\r\n" + piece + b".\r\n")
                    answers.append(read_reply(later))
                    later.close()
                finally:
                    for s in [customer, *strangers]:
                        s.close()
                return answers

            answers = await blocking(session)
            held = gw.daemon.gate.sessions.stranger_data
    assert [a[:3] for a in answers] == ["250", "250", "421", "250", "250"], answers
    assert answers[2] == replies.DATA_BUDGET
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["data_budget"]
    assert held == 0


async def test_the_bytes_of_a_body_cut_off_by_a_lost_connection_are_freed_at_once(
    tmp_path: Path, tls_pair: Any
) -> None:
    # A session, its reader and its task hold one another, and the task keeps the exception that
    # ended it with the frames that held the body: only Python's full collection, rare in a
    # long-running daemon, freed an unfinished body's bytes. Waves of them raised its memory by
    # some 30 MiB each, and it stayed. The collector is off here, as it mostly is in the daemon.
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            guard = gw.daemon.gate.sessions
            before = tracemalloc.get_traced_memory()[0]

            def unfinished() -> None:
                with dial(gw.port) as s:
                    read_reply(s)
                    for line in (
                        b"EHLO x",
                        b"MAIL FROM:<%s>" % STAFF.encode(),
                        b"RCPT TO:<%s>" % RCPT.encode(),
                    ):
                        s.sendall(line + b"\r\n")
                        while read_reply(s).startswith("250-"):
                            pass
                    s.sendall(b"DATA\r\n")
                    read_reply(s)
                    s.sendall(b"Subject: hi\r\n\r\n" + (b"x" * 998 + b"\r\n") * 900)  # 900 kB, no end

            tasks = []
            for _ in range(5):
                await blocking(unfinished)
                tasks += [weakref.ref(s._handler_coroutine) for s in guard.live]
            while guard.live or any((t := ref()) is not None and not t.done() for ref in tasks):
                await asyncio.sleep(0.05)  # until each session is gone and its task has ended
            grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert grown < 2_000_000, grown  # five bodies of 900 kB were held
