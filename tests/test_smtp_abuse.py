"""Hostile SMTP load that got through the session limits: strangers trickling bodies to postmaster
filled the connection cap, a stranger's refused RCPTs and a user's 452s each logged a line, stalled
STARTTLS handshakes were not capped and held for 60 s (then one address could hold every slot of the
cap), and MIME nested past the walker's bound lost
its text without a word. Real SMTP clients (smtplib, raw sockets, TLS) against the real listeners.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import parse_config
from gateway.smtp import replies, servers, tlsslots
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway
from tests.test_session_limits import answered, at_data, blocking, closed, dial, last_reply, read_reply
from tests.test_spec_smtp_postmaster import open_text
from tests.test_submission import client_tls, connect, reply, submission_config

RCPT = f"601123456@{DOMAIN}"
POSTMASTER = f"postmaster@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def stranger_at_data(port: int, source: str) -> socket.socket:
    """A stranger's mail to postmaster (taken from anyone), at its 354."""
    s, reply = at_data(port, source, sender="x@anywhere.example", rcpt=POSTMASTER)
    assert reply.startswith("354"), reply
    s.sendall(b"Subject: hi\r\n\r\n")
    return s


def trickle(sockets: list[socket.socket], stop: float) -> None:
    """One body byte from each stranger every 0.2 s until `stop`; one that heard 421 is left alone
    (a write after the server's close would reset the connection, its 421 unread)."""
    while time.monotonic() < stop:
        for s in list(sockets):
            if answered(s):
                sockets.remove(s)
                continue
            try:
                s.sendall(b"x")
            except OSError:
                sockets.remove(s)
        time.sleep(0.2)


async def test_strangers_trickling_bodies_give_way_at_the_cap_and_a_users_slow_upload_completes(
    tmp_path: Path,
) -> None:
    # 520 strangers' mails to postmaster, a body byte every 3 s each, held a cap of 500 for the
    # body's 10-minute bound: a session in DATA never gave way, and every normal mail heard 421.
    # Now the slowest stranger's body goes; a user's upload over a poor link is never touched.
    cap = 6
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(open_text(tmp_path, free_port())) as gw:
            guard = gw.daemon.gate.sessions
            guard.max_connections, guard.evict_after = cap, 0.5
            guard.stranger_min_rate = 0.0  # the rate's own cut is tested below: the cap alone here

            def session() -> tuple[list[str], str, list[str]]:
                upload, start = at_data(gw.port)  # the user's: 200 kB at 20 kB/s over 10 s
                assert start.startswith("354")
                strangers = [stranger_at_data(gw.port, f"127.0.0.{2 + i % 3}") for i in range(cap - 1)]
                dripping = list(strangers)
                results: list[str] = []
                drip = threading.Thread(target=trickle, args=(dripping, time.monotonic() + 13))
                drip.start()
                try:
                    time.sleep(1.0)  # each stranger in DATA for longer than evict_after
                    upload.sendall(b"Subject: slow link\r\n\r\n")
                    line = b"y" * 1000 + b"\r\n"
                    for i in range(200):
                        upload.sendall(line)
                        if i % 40 == 20:  # normal mail meanwhile: the first takes a stranger's slot
                            with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
                                try:
                                    c.sendmail(STAFF, [RCPT], mail(RCPT, f"normal {i}").as_bytes())
                                    results.append("250")
                                except smtplib.SMTPException as exc:
                                    results.append(str(exc))
                        time.sleep(0.05)
                    upload.sendall(b".\r\n")
                    uploaded = read_reply(upload)
                finally:
                    drip.join()
                evicted = [last_reply(s) for s in strangers if s not in dripping]
                for s in [upload, *strangers]:
                    s.close()
                return results, uploaded, evicted

            results, uploaded, evicted = await blocking(session)
    assert results == ["250"] * 5, results
    assert uploaded.startswith("250"), uploaded
    assert replies.SLOW_DATA_EVICTED in evicted, evicted
    assert {e["limit"] for e in logs if e["event"] == "smtp.limit_hit"} == {"slow_data_evicted"}


async def test_a_strangers_body_below_the_minimum_rate_is_cut_a_users_is_not(tmp_path: Path) -> None:
    # Without a rate, a byte every 3 s kept a stranger's session for the body's whole 10 minutes.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(open_text(tmp_path, free_port())) as gw:
            guard = gw.daemon.gate.sessions
            guard.stranger_rate_grace, guard.stranger_min_rate = 0.5, 1000.0

            def session() -> tuple[str, str]:
                stranger = stranger_at_data(gw.port, "127.0.0.2")
                user, start = at_data(gw.port)
                assert start.startswith("354")
                user.sendall(b"Subject: slow\r\n\r\n")
                for _ in range(10):  # 2 s at 5 bytes a second, both
                    time.sleep(0.2)
                    for s in (stranger, user):
                        if s is user or not answered(s):
                            s.sendall(b"z")
                cut = last_reply(stranger)
                user.sendall(b"\r\n.\r\n")
                taken = read_reply(user)
                stranger.close()
                user.close()
                return cut, taken

            cut, taken = await blocking(session)
            held = gw.daemon.gate.sessions.stranger_data
    assert cut == replies.DATA_TOO_SLOW_RATE
    assert taken.startswith("250"), taken
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["data_rate"]
    assert held == 0


def refused_rcpts(port: int, source: str, sender: str, rcpts: int, mails: int = 1) -> list[str]:
    """The replies to `rcpts` RCPTs in each of `mails` transactions of one session (raw, pipelined)."""
    s = dial(port, source)
    read_reply(s)
    s.sendall(b"EHLO x\r\n")
    while read_reply(s).startswith("250-"):
        pass
    answers = []
    for _ in range(mails):
        lines = [b"MAIL FROM:<%s>" % sender.encode()]
        lines += [b"RCPT TO:<6011%05d@%s>" % (n, DOMAIN.encode()) for n in range(rcpts)]
        s.sendall(b"\r\n".join([*lines, b"RSET"]) + b"\r\n")
        answers += [read_reply(s) for _ in range(len(lines) + 1)]
    s.sendall(b"QUIT\r\n")
    s.close()
    return answers


async def test_a_strangers_refusals_and_a_users_452s_log_one_line_not_one_each(tmp_path: Path) -> None:
    # Each RCPT of a stranger's session was an INFO `smtp.sender_refused` (240 a session, 3 MB of log a
    # second from 8 addresses), and each RCPT past a user's 100th an INFO `smtp.rcpt_refused` 452.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(open_text(tmp_path, free_port())) as gw:
            strangers = await blocking(lambda: refused_rcpts(gw.port, "127.0.0.2", "x@spam.example", 30))
            again = await blocking(lambda: refused_rcpts(gw.port, "127.0.0.3", "y@spam.example", 30))
            user = await blocking(lambda: refused_rcpts(gw.port, "127.0.0.1", STAFF, 140))
    assert all(a.startswith("550") for a in strangers[1:31] + again[1:31]), strangers
    assert [a[:3] for a in user[101:141]] == ["452"] * 40
    # A session's first refusal only, one a second at most: the second session's, within the second,
    # is held and counted in the summary the stop writes (`suppressed`).
    refused = [e for e in logs if e["event"] == "smtp.sender_refused" and not e.get("summary")]
    assert 1 <= len(refused) <= 2 and refused[0]["sender"] == "x@spam.example", refused
    full = [e for e in logs if e["event"] == "smtp.rcpt_refused" and e["reply"].startswith("452")]
    assert len([e for e in full if not e.get("summary")]) == 1 and full[0]["log_level"] == "info", full
    assert (
        sum(1 + e["suppressed"] for e in full if not e.get("summary"))
        + sum(e["suppressed"] for e in full if e.get("summary"))
        == 40
    )


async def test_refused_senders_without_premium_numbers_log_once_per_session(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=1).replace(
        'relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]'
    )
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            answers = await blocking(lambda: refused_rcpts(gw.port, "127.0.0.2", "x@spam.example", 0, 20))
    assert {a[:3] for a in answers[::2]} == {"550"}, answers
    assert len([e for e in logs if e["event"] == "smtp.sender_refused"]) == 1  # not a summary: none held


def nested(depth: int, subject: str) -> bytes:
    """A mail whose text sits `depth` multipart levels down."""
    head = f"From: {STAFF}\r\nTo: {RCPT}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
    opening, closing = "", ""
    for i in range(depth):
        opening += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
        closing = f"\r\n--b{i}--\r\n" + closing
    return (head + opening + "Content-Type: text/plain\r\n\r\nthe real text" + closing).encode()


@pytest.mark.parametrize("subject", ["depth40", ""])
async def test_mime_nested_past_the_walkers_bound_is_refused_not_sent_without_its_text(
    tmp_path: Path, subject: str
) -> None:
    # 40 levels got 250 and an SMS of the subject alone, or without a subject "no text (empty subject
    # and body)", which was wrong: the body was there, below the bound.
    cfg = open_text(tmp_path, free_port())
    async with running_gateway(cfg) as gw:
        shallow = await gw.send(nested(20, "depth20"), [RCPT])
        deep = await gw.send(nested(40, subject), [RCPT])
    assert shallow.error is None
    assert isinstance(deep.error, smtplib.SMTPDataError), deep
    assert deep.error.smtp_code == 554 and b"MIME nesting too deep" in deep.error.smtp_error


def starttls_stalled(port: int, source: str = "127.0.0.1") -> tuple[socket.socket, str]:
    """A session that said STARTTLS and, after its reply, nothing (no ClientHello)."""
    s = dial(port, source)
    read_reply(s)
    s.sendall(b"EHLO x\r\n")
    while read_reply(s).startswith("250-"):
        pass
    s.sendall(b"STARTTLS\r\n")
    return s, read_reply(s)


async def test_stalled_tls_handshakes_are_capped_per_port_and_cut_after_the_handshake_bound(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waves of 500 stalled STARTTLS sessions, each held for asyncio's 60 s, took the daemon from 139
    # to 478 MB for good: past the cap STARTTLS hears 454, and a handshake has 10 s (here 1 s).
    monkeypatch.setattr(servers, "TLS_HANDSHAKES_MAX", 2, raising=False)
    monkeypatch.setattr(servers, "TLS_HANDSHAKE_SECONDS", 1.0, raising=False)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            port = gw.daemon.submission_port

            def session() -> tuple[list[str], bool, str]:
                stalled = [starttls_stalled(port) for _ in range(3)]
                answers = [reply for _s, reply in stalled]
                began = time.monotonic()
                cut = all(closed(s) for s, _r in stalled[:2]) and time.monotonic() - began < 5
                later, reply = starttls_stalled(port)  # the slots came back
                for s, _r in [*stalled, (later, reply)]:
                    s.close()
                return answers, cut, reply

            answers, cut, later = await blocking(session)
    assert [a[:3] for a in answers] == ["220", "220", "454"], answers
    assert answers[2] == replies.TLS_BUSY
    assert cut
    assert later.startswith("220")
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["tls_handshakes"]


def tls_login_ready(port: int, tls: Any, source: str) -> str:
    """A mail program's STARTTLS from `source`: what its EHLO over TLS hears, or the error it met."""
    c = connect(port, source)
    try:
        c.ehlo("outlook.test")
        c.starttls(context=client_tls(tls))
        c.ehlo("outlook.test")
        return reply(c.noop())
    except smtplib.SMTPException as exc:
        return repr(exc)
    finally:
        c.close()


@pytest.mark.parametrize("listener", ["submission", "relay"])
async def test_one_address_holding_every_tls_slot_gives_one_up_to_another_address_at_once(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch, listener: str
) -> None:
    # One address may open 50 connections (the per-address cap), the port's 50 handshake slots: with
    # each one stalled after STARTTLS and reconnected when cut, every other client heard 454 4.7.0
    # and no user could log in. Its handshakes here are fresh (under the stall bound): an address that
    # replaces its own before they are old gets no more than one past them either.
    monkeypatch.setattr(servers, "TLS_HANDSHAKES_MAX", 4, raising=False)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
            port = gw.daemon.submission_port if listener == "submission" else gw.port

            def session() -> tuple[list[str], str, str, int]:
                stalled = [starttls_stalled(port, "127.0.0.1") for _ in range(4)]
                other = tls_login_ready(port, tls_pair, "127.0.0.2")
                _more, again = starttls_stalled(port, "127.0.0.1")  # the slot the other one left
                cut = sum(answered(s) for s, _r in stalled)  # dropped by now: `other` went on after it
                for s in [*(s for s, _r in stalled), _more]:
                    s.close()
                return [r[:3] for _s, r in stalled], other, again[:3], cut

            answers, other, again, cut = await blocking(session)
    assert answers == ["220"] * 4
    assert other.startswith("250"), other
    assert cut == 1
    assert again == "220"
    assert [e["limit"] for e in logs if e["event"] == "smtp.limit_hit"] == ["tls_handshake_evicted"]


async def test_stalled_handshakes_of_many_addresses_give_way_once_past_the_stall_bound(
    tmp_path: Path, tls_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One stalled handshake from each of several addresses: none holds more than another, so each
    # keeps its slot until it has run past the bound a real handshake never reaches.
    monkeypatch.setattr(servers, "TLS_HANDSHAKES_MAX", 3, raising=False)
    monkeypatch.setattr(tlsslots, "STALLED_SECONDS", 0.5, raising=False)
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        port = gw.daemon.submission_port

        def session() -> tuple[str, str]:
            stalled = [starttls_stalled(port, f"127.0.0.{n}") for n in (1, 2, 3)]
            _early, early = starttls_stalled(port, "127.0.0.4")
            _early.close()
            time.sleep(0.6)  # past the (shortened) stall bound
            later = tls_login_ready(port, tls_pair, "127.0.0.4")
            for s, _r in stalled:
                s.close()
            return early, later

        early, later = await blocking(session)
    assert early == replies.TLS_BUSY
    assert later.startswith("250"), later


def test_at_the_tls_cap_the_biggest_holder_gives_way_never_an_address_holding_as_few() -> None:
    slots: tlsslots.HandshakeSlots[str] = tlsslots.HandshakeSlots()
    for name, key in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")]:
        assert slots.taken(name, key, 0.0, 4) == (True, None)
    assert slots.taken("a4", "A", 0.1, 4) == (False, None)  # its own address holds the most
    assert slots.taken("b2", "B", 0.1, 4) == (True, "a1")  # A held two more than B: its oldest
    assert slots.taken("c1", "C", 0.2, 4) == (True, "a2")  # A and B hold two each: the older
    assert slots.taken("d1", "D", 0.3, 4) == (True, "b1")
    assert slots.taken("e1", "E", 0.5, 4) == (False, None)  # one each, none stalled yet
    assert slots.taken("e1", "E", tlsslots.STALLED_SECONDS + 0.05, 4) == (True, "a3")
    slots.release("a3")  # its session's own release, after it gave way: nothing more
    assert len(slots) == 4 and [slots.held(k) for k in "ABCDE"] == [0, 1, 1, 1, 1]


async def test_a_session_evicted_in_its_tls_handshake_ends_as_a_lost_connection(
    tmp_path: Path, tls_pair: Any
) -> None:
    # asyncio woke the handshake's waiter without an error when the connection was closed under it,
    # and aiosmtpd read on from the closed channel: the session's task stayed pending (until the idle
    # timeout, or "Task was destroyed but it is pending!" when collected).
    async with running_gateway(submission_config(tmp_path, 1, tls_pair)) as gw:
        guard = gw.daemon.gate.sessions
        guard.max_connections, guard.evict_after = 2, 0.3
        port = gw.daemon.submission_port
        stalled, reply = await blocking(lambda: starttls_stalled(port))
        assert reply.startswith("220")
        (session,) = guard.live
        task = session._handler_coroutine
        await asyncio.sleep(0.5)
        other = await blocking(lambda: dial(port))
        newcomer = await blocking(lambda: dial(port))  # at the cap: the stalled one gives way
        assert (await blocking(lambda: read_reply(newcomer))).startswith("220")
        for _ in range(100):
            if task.done():
                break
            await asyncio.sleep(0.02)
        ended = task.done()
        for s in (stalled, other, newcomer):
            s.close()
    assert ended
