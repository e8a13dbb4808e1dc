"""Shared fixtures: configs in tmp_path, an SMTP sink for outbound mail, and a running gateway."""

from __future__ import annotations

import asyncio
import os
import smtplib
import stat
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from gateway.config import Config, parse_config
from gateway.daemon import Daemon
from tests.fakes.ports import free_port

DOMAIN = "sms.example.com"
STAFF = "anna@acme.example"


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask of a login shell, under which files are created readable by every user."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """A directory this process may not write in. Mode 0500 does not stop root, who runs CI in a
    container; the immutable attribute does (access(2) and open(2) then say EPERM to root too)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"root needs chattr +i (e2fsprogs, CAP_LINUX_IMMUTABLE) for this test: {made.stderr}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def make_config(tmp_path: Path, *, smsc_port: int, **kw: Any) -> Config:
    text = config_text(tmp_path, smsc_port=smsc_port, **kw)
    return parse_config(text, source="test config", base_dir=tmp_path)


def smsc_link(name: str, port: int, extra: str = "") -> str:
    """One more `[[smsc]]` SMPP link for `config_text`'s config, reconnecting fast."""
    lines = [f'name = "{name}"', 'type = "smpp"', 'host = "127.0.0.1"', f"port = {port}"]
    lines += ['system_id = "smsgw"', 'password = "secret"', *extra.splitlines()]
    lines += ["reconnect_min_seconds = 0.1", "reconnect_max_seconds = 0.5"]
    return "\n[[smsc]]\n" + "\n".join(lines) + "\n"


def config_text(
    tmp_path: Path,
    *,
    smsc_port: int,
    extra: str = "",
    smsc_extra: str = "",
    smtp_port: int = 0,
    relay_port: int | None = None,
    **gateway: Any,
) -> str:
    gw = "\n".join(
        f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}" for k, v in gateway.items()
    )
    return f"""
[gateway]
domains = ["{DOMAIN}"]
retry_base_seconds = 0.2
state_dir = "{tmp_path / "state"}"
{gw}

[smtp]
listen = "127.0.0.1:{smtp_port}"
submission_listen = "127.0.0.1:0"

[mail]
relay = "127.0.0.1:{relay_port or free_port()}"

[[smsc]]
name = "main"
type = "smpp"
port = {smsc_port}
system_id = "smsgw"
password = "secret"
window = 10
max_per_second = 1000
response_timeout_seconds = 5
reconnect_min_seconds = 0.1
reconnect_max_seconds = 0.5
throttle_pause_seconds = 0.05
{smsc_extra}

[simulator]
enabled = false

[[account]]
name = "acme"
relay_networks = ["127.0.0.0/8"]
users = ["{STAFF}"]
sender = "+48100200300"
{extra}
"""


def mail(
    to: list[str] | str, body: str = "Hello from the gateway", subject: str | None = None, **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = ", ".join([to] if isinstance(to, str) else to)
    if subject is not None:
        msg["Subject"] = subject
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


@dataclass
class SmtpResult:
    refused: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    error: Exception | None = None


def send_blocking(
    port: int, msg: EmailMessage | bytes, rcpts: list[str], sender: str = STAFF, source: str = "127.0.0.1"
) -> SmtpResult:
    client = smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30)
    try:
        if isinstance(msg, bytes):
            refused = client.sendmail(sender, rcpts, msg)
        else:
            refused = client.send_message(msg, sender, rcpts)
    except smtplib.SMTPException as exc:
        return SmtpResult(error=exc)
    finally:
        # The mail's reply is in; as a mail server does, whatever QUIT hears is not the mail's
        # outcome. A daemon stopping after that reply answers QUIT with its 421, on which
        # smtplib's `with` block raises and the reply was lost to the test.
        with suppress(smtplib.SMTPException, OSError):
            client.quit()
        client.close()
    return SmtpResult(refused=refused)


class Sink:
    """A real SMTP server collecting what the gateway mails out (bounces, notices)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        self.arrived.set()
        return "250 2.0.0 OK"

    async def wait(self, n: int = 1, timeout: float = 20) -> None:
        async def _until() -> None:
            while len(self.messages) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(_until(), timeout)


@asynccontextmanager
async def smtp_sink(port: int, sink: Sink | None = None) -> AsyncIterator[Sink]:
    sink = sink or Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test"), "127.0.0.1", port)
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Running:
    daemon: Daemon
    config: Config
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def store(self) -> Any:
        return self.daemon.store

    @property
    def port(self) -> int:
        return self.daemon.smtp_port

    async def send(self, msg: EmailMessage | bytes, rcpts: list[str] | None = None, **kw: Any) -> SmtpResult:
        if rcpts is None:
            assert isinstance(msg, EmailMessage)
            rcpts = [a.strip() for a in str(msg["To"]).split(",")]
        return await asyncio.to_thread(send_blocking, self.port, msg, rcpts, **kw)

    async def until(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        async def _poll() -> None:
            while not predicate():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(_poll(), timeout)

    def states(self) -> list[str]:
        return [r[0] for r in self.store.db.conn.execute("SELECT state FROM messages ORDER BY id")]


@asynccontextmanager
async def running_gateway(
    config: Config, clock: Callable[[], float] | None = None, elapsed: Callable[[], float] | None = None
) -> AsyncIterator[Running]:
    # `elapsed`: the time passed that tells the clock's steps; an injected clock's own when not given.
    daemon = Daemon(config, clock=clock, elapsed=elapsed) if clock else Daemon(config, elapsed=elapsed)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    ready = asyncio.create_task(daemon.ready.wait())
    # A hang guard past the daemon's own wait for its intake workers (READY_SECONDS, 30 s), which a
    # loaded machine may spend starting them.
    start_seconds = 60
    done, _ = await asyncio.wait({task, ready}, timeout=start_seconds, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises the startup error
    if ready not in done:
        # Its stop closes what the start opened. A task given up unawaited left a server listening,
        # and uvloop's close waited for it for ever (the test hung instead of failing).
        ready.cancel()
        task.cancel()
        await asyncio.wait({task}, timeout=60)
        pytest.fail(f"gateway did not start within {start_seconds} s")
    try:
        yield Running(daemon, config, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """The commands in this process on a fresh test config (`tests.test_account_show.CLI`), the
    state directory made as install-service or the daemon's first start leaves it."""
    from tests.test_account_show import CLI

    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    return CLI(path, capsys)
