"""The relay's password never goes over the network in clear text (`gateway.relaylogin`).

With `[mail] relay_starttls = "when-offered"` (the default) a relay that did not offer STARTTLS (or
one an attacker stripped it from), or whose handshake failed, got AUTH PLAIN with the password on a
plain session. Now, for a relay off loopback, the mail stays queued and says why; `false` said by
the admin still sends it, and check-config warns. The relay is a real aiosmtpd server with AUTH,
listening on this machine's own non-loopback address (a relay across a network, as the gateway
sees it); the mail goes through the running gateway's outbox.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.config import Config, parse_config
from tests.certs import make_cert_pair
from tests.conftest import STAFF, config_text, free_port, running_gateway
from tests.test_mail_out_tls import SENDER, RecordingRelay, outbox
from tests.test_process import smsgw
from tests.test_relay_starttls_offered import BrokenTLS

PASSWORD = "RelayS3cret-xyz"
NOT_IN_CLEAR = "the relay password is not sent in clear text"


def lan_address() -> str:
    """This machine's address towards the network (not loopback), where a test relay can listen:
    the gateway then sees a relay across a network, to which loopback's exemption does not apply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: the route picks the address
        except OSError:
            pytest.skip("no network address other than loopback on this machine")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no network address other than loopback on this machine")
    return address


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class LoginRelay(RecordingRelay):
    """The recording relay that also takes AUTH, in clear too (as a relay that allows it does), and
    notes each login with whether it came over TLS."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[bytes, bytes, bool]] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password, session.ssl is not None))
        return AuthResult(success=True)


@asynccontextmanager
async def relay(
    host: str, port: int, pair: tuple[Path, Path] | None, server: type[SMTP] = SMTP
) -> AsyncIterator[LoginRelay]:
    """A relay with AUTH on `host`; with `pair` it offers STARTTLS (a self-signed certificate)."""
    seen = LoginRelay()
    context = None
    if pair is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*pair)

    def factory() -> SMTP:
        return server(
            seen,
            hostname="relay.test",
            tls_context=context,
            authenticator=seen.authenticate,
            auth_require_tls=False,
        )

    listening = await asyncio.get_running_loop().create_server(factory, host, port)
    try:
        yield seen
    finally:
        listening.close()
        await listening.wait_closed()


def login_config_text(tmp_path: Path, host: str, port: int, mail: str = "") -> str:
    (tmp_path / "relay-password").write_text(PASSWORD + "\n")
    text = config_text(tmp_path, smsc_port=1, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    assert anchor in text
    login = f'relay = "{host}:{port}"\nrelay_username = "smsgw"\nrelay_password_file = "relay-password"\n'
    return text.replace(anchor, login + mail, 1)


def login_config(tmp_path: Path, host: str, port: int, mail: str = "") -> Config:
    text = login_config_text(tmp_path, host, port, mail)
    return parse_config(text, source="test config", base_dir=tmp_path)


async def send_mails(cfg: Config, count: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """`count` mails through the running gateway's outbox: their rows once each was tried, and the log."""
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            box = gw.store.outbox
            for n in range(count):
                body = f"Subject: hi {n}\r\n\r\nhi\r\n".encode()
                await gw.store.write(lambda body=body: box.enqueue_mail("notice", SENDER, STAFF, body))

            def tried() -> bool:
                rows = outbox(gw)
                return len(rows) == count and all(r[1] >= 1 and r[0] != "active" for r in rows)

            await gw.until(tried, timeout=20)
            rows = outbox(gw)
    return rows, logs


@pytest.fixture(autouse=True)
def _no_credentials_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)  # the password file is the config's


async def test_a_relay_not_offering_starttls_gets_no_password_and_the_mail_waits(tmp_path: Path) -> None:
    host, port = lan_address(), free_port()
    async with relay(host, port, None) as seen:
        rows, logs = await send_mails(login_config(tmp_path, host, port), 2)
    assert seen.logins == [] and seen.messages == []  # before: AUTH PLAIN in clear, then the mail
    for state, attempts, error in rows:
        assert (state, attempts) == ("queued", 1)  # tried again later, not failed
        assert f"the relay did not offer TLS; {NOT_IN_CLEAR}" in error
    said = [e for e in logs if e["event"] == "mail.relay_not_encrypted"]
    assert len(said) == 1, said  # once for the episode, not once per mail
    assert said[0]["log_level"] == "warning" and said[0]["relay"] == f"{host}:{port}"
    assert "relay_starttls = false" in said[0]["note"]


async def test_a_failed_handshake_is_not_followed_by_the_password_in_clear(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    host, port = lan_address(), free_port()
    async with relay(host, port, tls_pair, BrokenTLS) as seen:
        rows, logs = await send_mails(login_config(tmp_path, host, port), 1)
    assert seen.logins == [] and seen.messages == []
    ((state, attempts, error),) = rows
    assert (state, attempts) == ("queued", 1)
    assert "the relay's TLS handshake failed" in error and NOT_IN_CLEAR in error
    assert not [e for e in logs if e["event"] == "mail.relay_tls_failed"]  # it said "in plain text"
    (said,) = [e for e in logs if e["event"] == "mail.relay_not_encrypted"]
    assert "handshake failed" in said["reason"]


async def test_over_starttls_the_login_goes_and_so_does_the_mail(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    host, port = lan_address(), free_port()
    async with relay(host, port, tls_pair) as seen:
        rows, logs = await send_mails(login_config(tmp_path, host, port), 1)
    assert rows[0][0] == "sent", rows
    assert seen.logins == [(b"smsgw", PASSWORD.encode(), True)]
    assert not [e for e in logs if e["event"] == "mail.relay_not_encrypted"]


async def test_false_said_by_the_admin_sends_it_in_clear_and_check_config_warns(tmp_path: Path) -> None:
    host, port = lan_address(), free_port()
    async with relay(host, port, None) as seen:
        rows, _ = await send_mails(login_config(tmp_path, host, port, "relay_starttls = false\n"), 1)
    assert rows[0][0] == "sent", rows
    assert seen.logins == [(b"smsgw", PASSWORD.encode(), False)]  # the admin's choice stands

    config = tmp_path / "config.toml"
    config.write_text(login_config_text(tmp_path, host, port, "relay_starttls = false\n"))
    checked = await asyncio.to_thread(smsgw, config, "check-config")
    said = checked.stdout + checked.stderr
    assert checked.returncode == 0, said
    assert f'relay_starttls: false sends the relay password to "{host}" in clear text' in said, said
    # on loopback nothing crosses a network: nothing to warn of
    config.write_text(login_config_text(tmp_path, "127.0.0.1", port, "relay_starttls = false\n"))
    checked = await asyncio.to_thread(smsgw, config, "check-config")
    assert "in clear text" not in checked.stdout + checked.stderr


def test_the_daemon_and_its_intake_worker_write_no_core_file(tmp_path: Path) -> None:
    """A crash's core held every secret of the config (the simulator's password, the metrics
    token): both processes set their core limit to 0 whatever limit they were started with."""
    import resource
    import subprocess
    import time

    from tests.test_process import CLI, ROOT, write_config

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core files are off for this whole session (hard limit 0): nothing to turn off")
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port, intake_processes=1)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))  # as `ulimit -c unlimited` before a start
    try:
        with (tmp_path / "daemon.log").open("wb") as out:
            command = [*CLI, "--config", str(config), "run"]
            daemon = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    try:
        worker = None
        deadline = time.monotonic() + 20
        while worker is None and time.monotonic() < deadline:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            children = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text().split()
            for pid in children:
                if b"intake_child" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    worker = int(pid)
            time.sleep(0.1)
        assert worker is not None, "no intake worker started"
        time.sleep(1)  # the worker's own start (it inherits the limit, and sets it again)
        for pid in (daemon.pid, worker):
            (line,) = [ln for ln in Path(f"/proc/{pid}/limits").read_text().splitlines() if "core" in ln]
            assert line.split()[4] == "0", line  # "Max core file size  SOFT  HARD  bytes"
    finally:
        daemon.terminate()
        daemon.wait(60)
