"""A TLS key with a passphrase for STARTTLS or the panel: refused in words, never prompted for.

OpenSSL asked "Enter PEM pass phrase:" on the terminal at each load of such a key: `check-config` at a
terminal passed once the admin typed it, the service (no terminal) then exited 3 with "[Errno 22]
Invalid argument"; `smsgw run` by hand stood at the prompt; a renewal to such a key while running
from a terminal held the certificate watcher at the prompt and the daemon ignored SIGTERM. The
commands and the daemon run here as real processes, with no terminal and with a pseudo-terminal as
their controlling terminal (where OpenSSL's prompt goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.certs import make_cert_pair
from tests.conftest import free_port
from tests.test_config_checks import smsgw, write
from tests.test_intake_workers import log_events, until
from tests.test_process import CLI, ROOT, until_listening
from tests.test_submission import submission_config_text
from tests.test_tls_renewal import HOSTNAME, NOW, Issuer, key_pem, pem, served_serial, write_pair

PROMPT = "PEM pass phrase"


def encrypted(key_pem_bytes: bytes) -> bytes:
    """The key with a passphrase, as a CA's portal or `openssl genpkey -aes256` gives one."""
    loaded = serialization.load_pem_private_key(key_pem_bytes, password=None)
    return loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret phrase"),
    )


def refusal(section: str, key: Path) -> str:
    return (
        f"[{section}] tls_key_file: the key {key} is encrypted (it has a passphrase): give the key"
        f" unencrypted (openssl pkey -in {key.name} -out plain.key)"
    )


def encrypted_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = make_cert_pair(tmp_path / "tls")
    key.write_bytes(encrypted(key.read_bytes()))
    return cert, key


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("SMSGW_CONFIG", "CREDENTIALS_DIRECTORY")}
    return {**clean, "PYTHONPATH": str(ROOT)}


def _controlling_terminal() -> None:
    """In the child, after its setsid: the pseudo-terminal on its stdin becomes its controlling
    terminal, the /dev/tty OpenSSL's prompt opens."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def at_terminal(args: list[str], within: float = 20.0) -> tuple[int | None, str]:
    """Run the command with a pseudo-terminal as its terminal (stdin, stdout, stderr and /dev/tty);
    (its exit status, None if it was still running `within`, and all it wrote there)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env(),
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    said = bytearray()
    deadline = time.monotonic() + within  # a hang guard, not a timing assertion
    try:
        while time.monotonic() < deadline:
            chunk = b""
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every holder of the terminal closed it
                    chunk = b""
            if chunk:
                said += chunk
            elif proc.poll() is not None:
                break
        status = proc.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        os.close(master)
    return status, said.decode(errors="replace")


# ---- check-config and run --------------------------------------------------------------------------


def panel_tls_config(tmp_path: Path, cert: Path, key: Path) -> str:
    """A config whose panel serves HTTPS with the pair given."""
    web = f'enabled = true\nlisten = "127.0.0.1:0"\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"'
    return submission_config_text(tmp_path, 1, None) + f"\n[web]\n{web}\n"


@pytest.mark.parametrize("section", ["smtp", "web"])
def test_check_config_refuses_an_encrypted_key_without_a_terminal(tmp_path: Path, section: str) -> None:
    # The panel's pair was not loaded at all: check-config said OK, and `run` then exited 3.
    cert, key = encrypted_pair(tmp_path)
    if section == "smtp":
        config = write(tmp_path, submission_config_text(tmp_path, 1, (cert, key)))
    else:
        config = write(tmp_path, panel_tls_config(tmp_path, cert, key))
    done = smsgw("--config", str(config), "check-config")
    assert done.returncode != 0, done.stdout
    assert refusal(section, key) in done.stderr, done.stderr
    assert PROMPT not in done.stdout + done.stderr and "Invalid argument" not in done.stderr


@pytest.mark.parametrize("section", ["smtp", "web"])
def test_run_exits_3_on_an_encrypted_key_without_a_terminal(tmp_path: Path, section: str) -> None:
    # As systemd starts the service: OpenSSL's prompt failed "[Errno 22] Invalid argument".
    cert, key = encrypted_pair(tmp_path)
    if section == "smtp":
        text = submission_config_text(tmp_path, 1, (cert, key))
    else:  # the panel's HTTPS
        text = panel_tls_config(tmp_path, cert, key)
    config = write(tmp_path, text)
    done = subprocess.run(
        [*CLI, "--config", str(config), "run"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env(),
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert refusal(section, key) in done.stdout + done.stderr, done.stdout + done.stderr
    assert PROMPT not in done.stdout + done.stderr and "Invalid argument" not in done.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_at_a_terminal_the_key_is_refused_not_prompted_for(tmp_path: Path, command: str) -> None:
    # At a terminal `run` stood at OpenSSL's prompt (Ctrl-C asked again); check-config passed once
    # the admin typed the passphrase, and the service, with no terminal, then could not start.
    cert, key = encrypted_pair(tmp_path)
    config = write(tmp_path, submission_config_text(tmp_path, 1, (cert, key)))
    status, said = at_terminal(["--config", str(config), command])
    assert PROMPT not in said, said
    assert status is not None, f"{command} still running at a terminal: {said}"
    assert status == 3 if command == "run" else status != 0, (status, said)
    flat = " ".join(said.split())  # the terminal wraps nothing, but its CR LF are not the text's
    assert " ".join(refusal("smtp", key).split()) in flat, said


# ---- a renewal while running -----------------------------------------------------------------------


async def test_a_renewal_to_an_encrypted_key_is_refused_and_the_daemon_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    ca = Issuer()
    old, old_key = ca.issue([HOSTNAME], not_after=NOW.replace(year=NOW.year + 1), serial=3001)
    new, new_key = ca.issue([HOSTNAME], not_after=NOW.replace(year=NOW.year + 2), serial=3002)
    cert_file, key_file = write_pair(tmp_path / "tls", pem(old, ca.cert), key_pem(old_key))
    smtp_port = free_port()
    text = submission_config_text(tmp_path, 1, (cert_file, key_file))
    text = text.replace('[smtp]\nlisten = "127.0.0.1:0"\n', f'[smtp]\nlisten = "127.0.0.1:{smtp_port}"\n', 1)
    assert f"127.0.0.1:{smtp_port}" in text
    config = write(tmp_path, text)
    # Run from a terminal, as an admin trying it by hand: OpenSSL's prompt went there. The look at
    # the files every 0.2 s instead of every minute, the daemon otherwise as `smsgw run` starts it.
    quick = (
        "from gateway import tlsrenewal; tlsrenewal.RELOAD_CHECK_SECONDS = 0.2;"
        " from gateway.cli.main import main; raise SystemExit(main())"
    )
    master, slave = pty.openpty()
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", quick, "--config", str(config), "run", "--json-logs"],
            stdin=slave,
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env=env(),
            start_new_session=True,
            preexec_fn=_controlling_terminal,
        )
    os.close(slave)
    try:
        await until_listening(proc, smtp_port, log)
        assert await asyncio.to_thread(served_serial, smtp_port) == 3001
        # The renewal's key comes with a passphrase (the certificate first, then its key).
        cert_file.write_bytes(pem(new, ca.cert))
        key_file.write_bytes(encrypted(key_pem(new_key)))
        with_key = refusal("smtp", key_file)

        def refused() -> list[dict[str, object]]:
            return [
                e for e in log_events(tmp_path, "tls.certificate_not_renewed") if with_key in str(e["error"])
            ]

        await until(lambda: bool(refused()), "the renewal refused")
        for said in refused():  # one for each port served from the pair (relay and submission)
            assert said["level"] == "warning" and said["key"] == str(key_file), said
        assert await asyncio.to_thread(served_serial, smtp_port) == 3001  # the old pair, still served
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        with contextlib.suppress(OSError):
            os.close(master)
    assert PROMPT not in log.read_text()
