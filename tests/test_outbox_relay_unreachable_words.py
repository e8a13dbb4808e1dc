"""A relay that cannot be reached, in `smsgw outbox list` as words, not as a Python repr.

A first day's admin with a wrong `[mail] relay` port read "SMTPConnectError('Error connecting to
127.0.0.1 on port 4599: [Errno 111] Connection refused')". The outbox worker sends over real sockets
to a port nobody listens on and to a name that does not resolve; the real CLI then lists the outbox.
The exception's type stays the kept text's head: the outbox finds the mail waiting for the relay by
it, and sends it as soon as the relay takes mail again (`test_relay_link_outages`).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any
from unittest.mock import patch

import aiosmtplib

from gateway.configservices import MailSection
from gateway.mailer import SmtpRelayMailer
from gateway.mailtls import implicit_tls_hint
from gateway.outboxbatch import error_text
from gateway.outboxworker import OutboxWorker
from gateway.relayfaultkinds import fault_kind
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_config_checks import smsgw, write
from tests.test_relay_link_outages import SENDER, body, until


async def deferred_error(store: Store, relay: str, rcpt: str) -> str:
    mailer = SmtpRelayMailer(MailSection(relay=relay), "gw.example", idle_seconds=0)
    worker = OutboxWorker(store, mailer)
    store.outbox.on_queued = worker.wake
    task = asyncio.create_task(worker.run())
    try:
        store.outbox.enqueue_mail("answer", SENDER, rcpt, body(1))
        sql = "SELECT last_error FROM outbox WHERE rcpt = ? AND attempts = 1 AND state = 'queued'"
        await until(lambda: store.db.conn.execute(sql, (rcpt,)).fetchone() is not None, timeout=60)
        return str(store.db.conn.execute(sql, (rcpt,)).fetchone()[0])
    finally:
        await worker.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unreachable_relay_is_said_in_words_in_outbox_list(tmp_path: Path) -> None:
    config = write(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    (tmp_path / "state").mkdir()
    port = free_port()  # nobody listens: connection refused
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        refused = await deferred_error(store, f"127.0.0.1:{port}", "anna@acme.pl")
        unknown = await deferred_error(store, "relay.nonexistent.invalid:25", "piotr@acme.pl")
    finally:
        store.close()
    assert refused == f"SMTPConnectError('[mail] relay 127.0.0.1:{port}: connection refused')", refused
    assert unknown.startswith(
        "SMTPConnectError('[mail] relay relay.nonexistent.invalid:25: the name does not resolve ("
    ), unknown
    assert fault_kind(refused) == fault_kind(unknown) == "unreachable"  # still the relay's fault
    listed = smsgw("--config", str(config), "outbox", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"last error: {refused}" in listed.stdout, listed.stdout
    assert "Errno" not in listed.stdout and "Error connecting to" not in listed.stdout, listed.stdout


async def test_an_ipv6_relay_is_named_as_the_setting_writes_it(tmp_path: Path) -> None:
    port = free_port()  # nobody listens on ::1 there either: connection refused
    store = Store.open(tmp_path / "smsgw.db")
    try:
        refused = await deferred_error(store, f"[::1]:{port}", "anna@acme.pl")
    finally:
        store.close()
    assert refused == f"SMTPConnectError('[mail] relay [::1]:{port}: connection refused')", refused


def test_the_gateways_own_hints_are_kept_whole() -> None:
    # A greeting that never came from port 465 names relay_implicit_tls (`gateway.mailtls`): the
    # words of a relay that cannot be reached must not replace it (test_relay_implicit_tls runs it
    # against a real SMTPS relay, where port 465 may be bound).
    timeout = aiosmtplib.SMTPConnectTimeoutError("Timed out waiting for server ready message")
    hint = implicit_tls_hint(timeout, 465, MailSection(relay="relay.acme.example:465"))
    assert hint is not None
    hint.__cause__ = timeout
    kept = error_text(hint)
    assert kept == repr(hint) and "set [mail] relay_implicit_tls = true" in kept, kept
    # aiosmtplib's words alone are said anew, and only when they are the whole text.
    assert error_text(timeout) == "SMTPConnectTimeoutError('[mail] relay: no greeting within the timeout')"
    other = aiosmtplib.SMTPConnectTimeoutError("Timed out connecting to relay on port 25, then more")
    assert error_text(other) == repr(other)


def both_families(name: str) -> Any:
    """`socket.getaddrinfo` with `name` resolving to ::1 and 127.0.0.1, as a relay's name with an AAAA
    and an A record does (no DNS here to hold such a name)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kw)
        return real("::1", port, *args, **kw) + real("127.0.0.1", port, *args, **kw)

    return patch.object(socket, "getaddrinfo", getaddrinfo)


async def test_a_relay_name_whose_every_address_refuses_is_said_refused(tmp_path: Path) -> None:
    # Each address's refusal differs by its address, so asyncio raises one OSError of them all,
    # "Multiple exceptions: [Errno 111] Connect call failed ('::1', …), [Errno 111] …", with no
    # strerror: the outbox kept that Python text whole.
    port = free_port()  # nobody listens there, on ::1 or on 127.0.0.1
    store = Store.open(tmp_path / "smsgw.db")
    try:
        with both_families("relay.both.example"):
            refused = await deferred_error(store, f"relay.both.example:{port}", "anna@acme.pl")
    finally:
        store.close()
    assert refused == f"SMTPConnectError('[mail] relay relay.both.example:{port}: connection refused')", (
        refused
    )
    assert fault_kind(refused) == "unreachable"


def test_a_relay_name_whose_addresses_fail_otherwise_is_said_unanswered() -> None:
    # A refusal beside an unreachable network (no route from here to the relay's IPv6 address): no
    # socket can be made to fail so, so the error is built as asyncio builds it.
    cause = OSError(
        "Multiple exceptions: [Errno 101] Network is unreachable,"
        " [Errno 111] Connect call failed ('192.0.2.1', 25)"
    )
    exc = aiosmtplib.SMTPConnectError(f"Error connecting to relay.acme.example on port 25: {cause}")
    exc.__cause__ = cause
    said = error_text(exc)
    assert said == "SMTPConnectError('[mail] relay relay.acme.example:25: no address of it answered')", said
