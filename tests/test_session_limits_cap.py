# ruff: noqa: F811  (the tests take test_session_limits's `tls_pair` fixture, imported by name)
"""At the total connection cap, over raw sockets on both listeners: connections beyond it get 421, and
the session that gives way is the longest silent one without a login or mail, or one dripping bytes
or NOOPs, never one heard from just now, while real clients get in. Split from
test_session_limits.py by subject (it was over 400 lines)."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from gateway.smtp import replies
from tests.conftest import DOMAIN, STAFF, mail, running_gateway
from tests.test_session_limits import (
    RCPT,
    answered,
    at_data,
    blocking,
    closed,
    dial,
    last_reply,
    read_reply,
    tls_pair,  # noqa: F401  (the fixture)
)
from tests.test_submission import submission_config


def mail_taken(s: socket.socket, n: int) -> None:
    """One mail through an open relay session: the session has proved itself (it keeps its place)."""
    for line in (
        b"EHLO x",
        b"MAIL FROM:<%s>" % STAFF.encode(),
        b"RCPT TO:<60200%04d@%s>" % (n, DOMAIN.encode()),
    ):
        s.sendall(line + b"\r\n")
        while (reply := read_reply(s)).startswith("250-"):
            pass
        assert reply.startswith("250"), reply
    s.sendall(b"DATA\r\n")
    assert read_reply(s).startswith("354")
    s.sendall(b"Subject: hi\r\n\r\nBoard at 9\r\n.\r\n")
    assert read_reply(s).startswith("250")


async def test_connections_beyond_the_total_cap_get_421(tmp_path: Path, tls_pair: Any) -> None:
    # The total counts every address on both listeners; the refusal is logged. Sessions that each
    # had a mail taken keep their places.
    cfg = submission_config(tmp_path, 1, tls_pair, max_connections=4)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            relay = gw.port

            def session() -> list[str]:
                held = [dial(relay) for _ in range(4)]
                try:
                    answers = [read_reply(s) for s in held]
                    for n, s in enumerate(held):
                        mail_taken(s, n)
                    with dial(relay, "127.0.0.5") as over:
                        answers.append(read_reply(over))
                        assert closed(over)
                finally:
                    for s in held:
                        s.close()
                return answers

            answers = await blocking(session)
    assert {a[:3] for a in answers[:4]} == {"220"}
    assert answers[4] == replies.TOO_MANY_CONNECTIONS
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["connections"]


async def test_at_the_cap_the_longest_silent_session_without_a_login_or_mail_gives_way(
    tmp_path: Path, tls_pair: Any
) -> None:
    # 500 connections that said nothing, from ten addresses and no password, kept every Outlook
    # user out with 421 for as long as their sender liked. Only a session that made no progress for
    # the guard's time gives way; one that had a mail taken, or is sending a body, keeps its place.
    cfg = submission_config(tmp_path, 1, tls_pair, max_connections=5)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            gw.daemon.gate.sessions.evict_after = 0.5
            relay, sub = gw.port, gw.daemon.submission_port

            def session() -> list[str]:
                worker = dial(relay)
                read_reply(worker)
                mail_taken(worker, 0)
                sending, _ = at_data(relay)  # a mail's body on its way, in pieces
                idle = [dial(sub, f"127.0.0.{n}") for n in (2, 3, 4)]
                try:
                    answers = [read_reply(s) for s in idle]
                    time.sleep(0.6)
                    sending.sendall(b"Subject: hi\r\n")
                    time.sleep(0.6)  # everyone silent past the guard's time, the body too
                    idle[1].sendall(b"EHLO x\r\n")  # a step since: the longest stalled is idle[0]
                    while (reply := read_reply(idle[1])).startswith("250-"):
                        pass
                    answers.append(reply)
                    with dial(sub, "127.0.0.5") as outlook:
                        answers.append(read_reply(outlook))  # in, in the place of idle[0]
                        answers.append(read_reply(idle[0]))
                        assert closed(idle[0])
                        with dial(relay, "127.0.0.6") as another:
                            answers.append(read_reply(another))  # in, in the place of idle[2]
                            answers.append(read_reply(idle[2]))
                    sending.sendall(b"\r\nBoard at 9\r\n.\r\n")
                    answers.append(read_reply(sending))  # the body's sender kept its place
                    mail_taken(worker, 1)  # untouched
                finally:
                    for s in [worker, sending, *idle]:
                        s.close()
                return answers

            answers = await blocking(session)
    assert [a[:3] for a in answers] == ["220"] * 3 + ["250", "220", "421", "220", "421", "250"]
    assert answers[5] == replies.IDLE_EVICTED
    assert {e["limit"] for e in logs if e["event"] == "smtp.limit_hit"} == {"idle_evicted"}


async def test_at_the_cap_sessions_dripping_bytes_or_noops_give_way_to_real_clients(
    tmp_path: Path, tls_pair: Any
) -> None:
    # A byte of a command line or a NOOP every few seconds counted as being heard from: ten such
    # sessions, from two addresses and no password, held every slot, and Outlook users met 421 for
    # as long as their sender liked. Only steps towards a mail count: the drippers give way, one per
    # real client, and a mail whose body is still arriving keeps its place.
    cfg = submission_config(tmp_path, 1, tls_pair, max_connections=11)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            gw.daemon.gate.sessions.evict_after = 0.5
            relay, sub = gw.port, gw.daemon.submission_port

            def session() -> tuple[list[str], list[str], str]:
                sending, _ = at_data(relay, "127.0.0.9")
                sending.sendall(b"Subject: hi\r\n\r\n")
                drippers = [dial(relay if n % 2 else sub, f"127.0.0.{2 + n % 2}") for n in range(10)]
                for s in drippers:
                    read_reply(s)
                stop = threading.Event()

                def drip() -> None:  # each dripper says something every 0.1 s, the body's sender too
                    while not stop.wait(0.1):
                        for n, s in enumerate(drippers):
                            if not answered(s):  # after its 421 a write would reset it, 421 and all
                                try:
                                    s.sendall(b"NOOP\r\n" if n < 5 else b"X")
                                except OSError:
                                    pass
                        sending.sendall(b"\r\n")  # blank lines: the text stays the subject

                dripping = threading.Thread(target=drip)
                dripping.start()
                clients: list[smtplib.SMTP] = []
                try:
                    time.sleep(0.6)  # past the guard's time, each heard from all along
                    answers = []
                    for n in range(11):
                        c = smtplib.SMTP(timeout=30)
                        clients.append(c)
                        code, text = c.connect("127.0.0.1", relay)
                        answers.append(str(code) if code == 220 else f"{code} {text.decode()}")
                        if code != 220:
                            break
                        c.sendmail(STAFF, [f"60200{n:04d}@{DOMAIN}"], mail(RCPT, f"Mail {n}").as_bytes())
                    # Read only once all were let in: a dripper still held would never end its reply.
                    evicted = [last_reply(s) for s in drippers] if len(answers) > 10 else []
                finally:
                    stop.set()
                    dripping.join()
                sending.sendall(b".\r\n")
                body = read_reply(sending)
                for c in clients:
                    c.close()
                for s in [sending, *drippers]:
                    s.close()
                return answers, evicted, body

            answers, evicted, body = await blocking(session)
            taken = gw.store.admin.count_messages()
    assert answers == ["220"] * 10 + [replies.TOO_MANY_CONNECTIONS]  # then all are proven or in DATA
    assert set(evicted) == {replies.IDLE_EVICTED}
    assert body.startswith("250") and taken == 11
    assert sum(e["event"] == "smtp.limit_hit" and e["limit"] == "idle_evicted" for e in logs) >= 1


async def test_at_the_cap_a_session_that_never_gets_a_mail_through_gives_way_in_the_end(
    tmp_path: Path, tls_pair: Any
) -> None:
    # MAIL, RSET, MAIL... each MAIL is a step, but no mail ever comes of them: past the guard's
    # time for a session without a login or a mail taken, it gives way like a silent one.
    cfg = submission_config(tmp_path, 1, tls_pair, max_connections=1)
    async with running_gateway(cfg) as gw:
        guard = gw.daemon.gate.sessions
        guard.evict_after, guard.evict_unproven_after = 60.0, 0.5

        def session() -> list[str]:
            with dial(gw.port, "127.0.0.2") as looping:
                read_reply(looping)
                looping.sendall(b"EHLO x\r\n")
                while read_reply(looping).startswith("250-"):
                    pass
                answers = []
                for _ in range(6):  # past the guard's time, a step every 0.1 s
                    looping.sendall(b"MAIL FROM:<%s>\r\nRSET\r\n" % STAFF.encode())
                    answers += [read_reply(looping), read_reply(looping)]
                    time.sleep(0.1)
                with dial(gw.port, "127.0.0.3") as new:
                    answers.append(read_reply(new))
                    answers.append(last_reply(looping))
            return answers

        answers = await blocking(session)
    assert [a[:3] for a in answers[:12]] == ["250"] * 12
    assert answers[12:] == [answers[12], replies.IDLE_EVICTED] and answers[12].startswith("220")


async def test_at_the_cap_a_session_heard_from_just_now_is_not_evicted(tmp_path: Path, tls_pair: Any) -> None:
    # Sessions that connected a moment ago are not idle, whatever they have said: the new one waits.
    cfg = submission_config(tmp_path, 1, tls_pair, max_connections=2)
    async with running_gateway(cfg) as gw:
        relay = gw.port

        def session() -> list[str]:
            held = [dial(relay, "127.0.0.2"), dial(relay, "127.0.0.3")]
            try:
                answers = [read_reply(s) for s in held]
                with dial(relay, "127.0.0.4") as over:
                    answers.append(read_reply(over))
            finally:
                for s in held:
                    s.close()
            return answers

        answers = await blocking(session)
    assert answers[:2] == [answers[0]] * 2 and answers[0].startswith("220")
    assert answers[2] == replies.TOO_MANY_CONNECTIONS
