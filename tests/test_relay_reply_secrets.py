"""A relay that echoes our password in its reply to AUTH (a misconfigured SASL backend's error text,
a debugging relay): `smsgw status` masked it, but the same reply was kept whole as the mail's error
(`smsgw outbox list`, the panel), in the probe's log line (`outbox.relay_probe_failed`) and in every
send failing at once with the refusal held. Now the reply is masked and made one line where it
becomes an error (`gateway.relayloginstatus.unsaid`), the outbox worker masks any reply of the
session (a 5xx to MAIL echoing it too), and the log masks the relay password while the worker runs.

Real peers: an SMTP relay on 127.0.0.1 answering as scripted, the daemon as a process with its
JSON log, a real database file, `smsgw outbox list` as a process; the mailer and the outbox worker
in-process against the same relay.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway.config import load_config
from gateway.logging import _json_line, _redact, hide_values
from gateway.mailauth import LoginFailingForNow, LoginHeld
from gateway.mailer import SmtpRelayMailer
from gateway.outboxworker import OutboxWorker
from gateway.secretmask import secret_forms
from gateway.store.db import Store
from gateway.store.relayreply import relay_reply
from tests.conftest import config_text, free_port
from tests.fakes.smsc import HappySMSC
from tests.test_process import CLI, ROOT, smsgw, until_listening
from tests.test_relay_fixed_restart import deferred_outbox
from tests.test_relay_login_gate import Clock

# A quote and a backslash: in a kept error's repr the backslash is doubled, so the password as typed
# is not what a mask looking for it would find.
PASSWORD = 'Sesame"4\\2'
USER = "gw"
B64_PASSWORD = base64.b64encode(PASSWORD.encode()).decode()
B64_PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
# What no kept error, output or log line may hold: a part of the password (any escaped form of it
# holds it), and the first characters of each base64 form.
TELLTALES = ("Sesame", B64_PASSWORD[:8], B64_PLAIN[:8])
MAIL = b"Subject: x\r\n\r\nx\r\n"

Answer = Callable[[str], str | None]  # a command line -> the relay's reply (None: the usual one)


def echoing(line: str) -> str | None:
    """535 to AUTH, echoing what was sent: PLAIN's response and the password decoded from it, on
    two lines, with a terminal escape, a carriage return, a bidi override and a bell; AUTH LOGIN's
    password step in base64 and as typed."""
    if line.upper().startswith("AUTH PLAIN "):
        blob = line.split()[2]
        typed = base64.b64decode(blob).split(b"\0")[2].decode()
        return f"535-5.7.8 rejected {blob}\r\n535 5.7.8 for {USER}:{typed} \x1b[2J\rgone\u202e\x07"
    if line.upper().startswith("AUTH LOGIN"):
        return "334 UGFzc3dvcmQ6"
    if line == B64_PASSWORD:
        return f"535 5.7.8 bad {line.rstrip('=')} ({base64.b64decode(line).decode()})\x1b]0;x\x07"
    return None


class ScriptedRelay:
    """An SMTP relay offering AUTH PLAIN and LOGIN, each command answered by `answer` or as a relay
    taking the mail would; the commands it was sent, in order."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.commands: list[str] = []
        self.writers: set[asyncio.StreamWriter] = set()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            await self._converse(reader, writer)
        except ConnectionError:
            pass  # the client hung up
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 relay.test ESMTP\r\n")
        data = False
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if data:
                data = text != "."
                if not data:
                    writer.write(b"250 2.0.0 queued\r\n")
                continue
            self.commands.append(text)
            verb = text.split(" ", 1)[0].upper()
            reply = self.answer(text)
            if reply is None:
                reply = {
                    "EHLO": "250-relay.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME",
                    "DATA": "354 go on",
                    "QUIT": "221 bye",
                }.get(verb, "250 ok")
                data = verb == "DATA"
            writer.write(reply.encode() + b"\r\n")
            await writer.drain()
            if verb == "QUIT":
                return


@asynccontextmanager
async def scripted_relay(port: int, answer: Answer) -> AsyncIterator[ScriptedRelay]:
    relay = ScriptedRelay(answer)
    server = await asyncio.start_server(relay.session, "127.0.0.1", port)
    try:
        yield relay
    finally:
        server.close()
        for writer in list(relay.writers):
            writer.close()
        await server.wait_closed()


def relay_config(tmp_path: Path, relay_port: int, smsc_port: int = 1, smtp_port: int = 0) -> Path:
    text = config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port, relay_port=relay_port)
    anchor = f'relay = "127.0.0.1:{relay_port}"\n'
    text = text.replace(
        anchor, f"{anchor}relay_username = {json.dumps(USER)}\nrelay_password = {json.dumps(PASSWORD)}\n", 1
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


def telltale(text: str) -> str | None:
    return next((t for t in TELLTALES if t in text), None)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


async def until(predicate: Callable[[], bool], what: str, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


async def test_a_relay_echoing_the_password_to_auth_leaves_it_in_no_row_listing_or_log_line(
    tmp_path: Path,
) -> None:
    relay_port, smtp_port = free_port(), free_port()
    async with HappySMSC() as smsc, scripted_relay(relay_port, echoing) as relay:
        config = relay_config(tmp_path, relay_port, smsc.port, smtp_port)
        cfg = load_config(config)
        down, _grey = deferred_outbox(cfg)  # mail waiting for the relay: the start's probe logs in
        log = tmp_path / "daemon.log"
        with log.open("ab") as out:  # at DEBUG: the probe's failure is a debug line
            run = [*CLI, "--config", str(config), "run", "--json-logs", "--log-level", "debug"]
            proc = subprocess.Popen(run, cwd=ROOT, stdout=out, stderr=out)
        try:
            await until_listening(proc, smtp_port, log)
            await until(lambda: "outbox.relay_probe_failed" in log.read_text(), "the start's probe failed")
            # One mail sent now: it fails at once with the refusal the probe's login left held.
            assert (await asyncio.to_thread(smsgw, config, "outbox", "retry", str(down[0]))).returncode == 0

            def error() -> str:
                with sqlite3.connect(cfg.db_path) as db:
                    row = db.execute("SELECT last_error FROM outbox WHERE id = ?", (down[0],)).fetchone()
                return str(row[0])

            await until(lambda: error().startswith("SMTPAuthenticationError("), "the send failed")
            listed = await asyncio.to_thread(smsgw, config, "outbox", "list")
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
    assert any(c.startswith("AUTH PLAIN ") for c in relay.commands) and B64_PASSWORD in relay.commands
    kept = error()
    assert telltale(kept) is None, kept
    # One plain line: the two lines of the reply, and no escape, CR, bell or bidi override, even as
    # the repr's escapes of them.
    assert kept.startswith("SMTPAuthenticationError(535, '5.7.8 ")
    assert "***" in kept and not any(c in kept for c in "\n\r\x1b\x07\u202e") and "\\x" not in kept, kept
    assert listed.returncode == 0 and telltale(listed.stdout) is None, listed.stdout
    assert f"last error: {kept}" in listed.stdout
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"outbox.relay_probe_failed", "mail.relay_login_refused", "mail.deferred"} <= events
    for line in lines:
        for text in strings(line):
            assert telltale(text) is None, line


def test_the_log_masks_the_relay_password_in_any_field_and_traceback_while_asked(tmp_path: Path) -> None:
    # What no key test catches: a relay's reply to MAIL quoted in a field named `reply` (the mailer's
    # `mail.relay_refuses_null_sender`), a repr, a traceback's text.
    owner = object()
    reply = f"550 5.7.1 {USER}/{PASSWORD} may not send as <>"
    try:
        raise aiosmtplib.SMTPSenderRefused(550, f"no {B64_PASSWORD}", "")
    except aiosmtplib.SMTPSenderRefused as exc:
        failure = exc
    hide_values(owner, secret_forms([PASSWORD, B64_PASSWORD]))
    try:
        redacted = _redact(None, "error", {"event": "x", "reply": reply, "error": repr(reply), "n": 3})
        rendered = _json_line(None, "error", {"event": "x", "exc_info": failure})
    finally:
        hide_values(owner, ())
    assert redacted == {"event": "x", "reply": "550 5.7.1 gw/*** may not send as <>", "error": repr(
        "550 5.7.1 gw/*** may not send as <>"
    ), "n": 3}  # fmt: skip
    said = json.loads(rendered)
    assert "SMTPSenderRefused" in said["exception"] and telltale(said["exception"]) is None, said
    # Asked no more (the worker stopped): nothing masked.
    assert _redact(None, "error", {"event": "x", "reply": reply})["reply"] == reply


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (lambda line: f"454 4.7.0 backend down for {PASSWORD}" if line.startswith("AUTH") else None, "454"),
        (lambda line: f"421 4.3.2 closing, {B64_PLAIN}" if line.startswith("AUTH") else None, "421"),
        (lambda line: f"no code at all {PASSWORD}" if line.startswith("AUTH") else None, "malformed"),
    ],
)
async def test_every_error_a_reply_to_auth_becomes_is_masked(
    tmp_path: Path, answer: Answer, kind: str
) -> None:
    port, clock = free_port(), Clock()
    cfg = load_config(relay_config(tmp_path, port))
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", PASSWORD, clock=clock)
    raised: list[BaseException] = []
    try:
        async with scripted_relay(port, answer):
            with capture_logs() as logs:
                for _ in range(2):  # the second one, after a 454, fails with what is held
                    try:
                        await mailer.send("gw@gw.test", "u@acme.example", MAIL)
                    except Exception as exc:
                        raised.append(exc)
                try:
                    await mailer.probe()
                except Exception as exc:
                    raised.append(exc)
    finally:
        await mailer.close()
    assert len(raised) == 3
    if kind == "454":
        assert all(isinstance(exc, LoginFailingForNow | LoginHeld) for exc in raised), raised
        assert [line["event"] for line in logs if "relay_login" in line["event"]] == [
            "mail.relay_login_failing"
        ]
    elif kind == "421":
        assert all(type(exc) is aiosmtplib.SMTPResponseException and exc.code == 421 for exc in raised)
    else:
        assert all(type(exc) is aiosmtplib.SMTPResponseException and exc.code == -1 for exc in raised)
    for exc in raised:
        said = f"{exc!r} {exc}"
        assert telltale(said) is None and "***" in said, said
        assert exc.__cause__ is None and exc.__context__ is None  # the reply as given nowhere
    for line in logs:
        for text in strings(line):
            assert telltale(text) is None, line
    report = mailer.logins.report()
    assert report is None or telltale(str(report)) is None


async def test_a_reply_after_auth_echoing_the_password_is_masked_in_the_kept_error(tmp_path: Path) -> None:
    # The relay takes our login, then refuses the sender (for good) and a recipient (for now),
    # quoting the account's password back in each, on two lines with a terminal escape.
    def after_auth(line: str) -> str | None:
        if line.startswith("AUTH PLAIN"):
            return "235 2.7.0 ok"
        if line.startswith("MAIL FROM:<refused@"):
            return f"553-5.7.1 not owned by {USER}\r\n553 5.7.1 ({PASSWORD}) \x1b[2J"
        if line.startswith("RCPT TO:<later@"):
            return f"450 4.7.1 try later {B64_PLAIN}\x07"
        return None

    port, clock = free_port(), Clock()
    cfg = load_config(relay_config(tmp_path, port))
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", PASSWORD, clock=clock)
    worker = OutboxWorker(store, mailer)
    store.outbox.enqueue_mail("reply", "refused@gw.test", "u@acme.example", MAIL)
    store.outbox.enqueue_mail("reply", "gw@gw.test", "later@acme.example", MAIL)
    try:
        async with scripted_relay(port, after_auth):
            with capture_logs() as logs:
                await asyncio.gather(*await worker._claim(worker.concurrency))
            rows = store.db.conn.execute("SELECT state, last_error FROM outbox ORDER BY id").fetchall()
    finally:
        await mailer.close()
        store.close()
    [(_failed, refused), (deferred, later)] = [tuple(row) for row in rows]
    assert deferred == "queued" and "450" in later and "553" in refused, rows
    for kept in (refused, later):
        assert telltale(kept) is None and "***" in kept, kept
        assert not any(c in kept for c in "\n\r\x1b\x07"), kept
        # Nor as the repr's escapes, which `smsgw status` reads back into the characters themselves.
        assert "\\x" not in kept and relay_reply(kept)[1].isprintable(), kept
    for line in logs:
        if line["event"] in {"mail.failed", "mail.deferred"}:
            assert telltale(str(line.get("error"))) is None, line
