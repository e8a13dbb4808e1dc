"""Secrets and privacy (issue 9, item 9): a password readable by every user is warned about, the files
holding password hashes and SMS texts are their owner's only whatever the umask, and no log line
carries a message text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from pathlib import Path

import pytest
import structlog

from gateway.config import load_config
from gateway.housekeeping import read_status, write_status
from gateway.logging import _redact
from gateway.smtp import replies
from gateway.store.db import Store
from smsc.cimd2.packet import Op
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, mode, running_gateway, send_blocking
from tests.test_cimd2_link import mo, running, scripted, sms
from tests.test_process import smsgw, start_daemon
from tests.test_submission import (
    auth_reply,
    b64,
    blocking,
    secure,
    submission_config_text,
    with_password,
)

MO_TEXT = "PIN 4711 for the vault"


# What the tests' config leaves of the walkthrough (an example domain, a loopback relay network, the
# demo sender): its link on loopback with the simulator off goes to an operator, as a tunnel would.
WALKTHROUGH = ("is an example domain", "without a login", "the walkthrough's made-up number")


def warnings_in(stderr: str) -> list[str]:
    """The warnings check-config gave, but those of the walkthrough's leftovers (`WALKTHROUGH`)."""
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("smsgw: warning:") and not any(words in line for words in WALKTHROUGH)
    ]


def test_check_config_warns_once_about_a_config_every_user_can_read(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))  # holds password = "secret"
    config.chmod(0o644)
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    [line] = warnings_in(res.stderr)
    assert str(config) in line and "0644" in line and f"chmod 640 {config}" in line
    assert "secret" not in line  # the file is named, its password never
    # It read "holds the passwords of [[smsc]] "main" password".
    assert f'{config} holds a password ([[smsc]] "main" password) and is readable by every user' in line

    config.chmod(0o640)
    res = smsgw(config, "check-config")
    assert res.returncode == 0 and warnings_in(res.stderr) == []


def test_the_shipped_config_is_not_warned_about_but_a_real_link_beside_it_is(tmp_path: Path) -> None:
    # The shipped config's password guards only the built-in simulator on loopback: a warning at
    # every first start would teach people to ignore it. An operator's link gets it as before.
    shipped = Path(__file__).resolve().parent.parent / "config.toml"
    config = tmp_path / "config.toml"
    config.write_text(shipped.read_text().replace('state_dir = "var"', f'state_dir = "{tmp_path / "var"}"'))
    config.chmod(0o644)
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    assert warnings_in(res.stderr) == []

    operator = '[[smsc]]\nname = "operator"\ntype = "smpp"\nhost = "192.0.2.10"\nport = 2775\n'
    config.write_text(config.read_text() + operator + 'password = "op-pass"\nprefixes = ["+4850"]\n')
    # (The shipped "maildir:" relay beside an operator's link is warned of too: gateway.configdoubts.)
    [line] = [w for w in warnings_in(smsgw(config, "check-config").stderr) if "readable by every user" in w]
    assert '[[smsc]] "operator" password' in line and "simulator" not in line


def test_check_config_warns_about_a_password_file_every_user_can_read(tmp_path: Path) -> None:
    secret = tmp_path / "smsc-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    text = config_text(tmp_path, smsc_port=free_port()).replace(
        'password = "secret"', f'password_file = "{secret.name}"'
    )
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o644)  # no password inside: readable is fine
    res = smsgw(config, "check-config")
    [line] = warnings_in(res.stderr)
    assert str(secret) in line and "0644" in line and f"chmod 600 {secret}" in line
    assert f'{secret} holds a password ([[smsc]] "main" password_file) and' in line, line

    secret.chmod(0o600)
    assert warnings_in(smsgw(config, "check-config").stderr) == []


async def test_daemon_under_umask_022_warns_and_keeps_its_files_private(
    tmp_path: Path, umask_022: None
) -> None:
    # The daemon as a real process started from a login shell: config 0644 with a password inside.
    smsc_port, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port))
    assert mode(config) == 0o644
    proc = await start_daemon(config, smtp_port)
    state = tmp_path / "state"
    try:
        res = await asyncio.to_thread(
            send_blocking, smtp_port, mail(f"601123456@{DOMAIN}", "Private text"), [f"601123456@{DOMAIN}"]
        )
        assert res.error is None
        for _ in range(200):  # the housekeeping worker writes the status file every 2 s
            if (state / "status.json").exists():
                break
            await asyncio.sleep(0.05)
        files = [state / "smsgw.db", state / "smsgw.db-wal", state / "smsgw.db-shm", state / "status.json"]
        assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    log = (tmp_path / "daemon.log").read_text()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    [warning] = [e for e in events if e["event"] == "config.secret_readable"]  # a JSON line like the rest
    assert (warning["level"], warning["file"], warning["mode"]) == ("warning", str(config), "0644")
    assert warning["fix"] == f"chmod 640 {config}"
    assert "Private text" not in log and '"secret"' not in log


def test_a_database_left_readable_by_every_user_is_narrowed_once(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "smsgw.db"
    Store.open(path).close()
    path.chmod(0o644)  # as an earlier version created it
    with structlog.testing.capture_logs() as logs:
        Store.open(path).close()
        Store.open(path).close()
    assert mode(path) == 0o640  # other users lose access; the group is the admin's choice
    [event] = [e for e in logs if e["event"] == "files.mode_tightened"]
    assert event["log_level"] == "warning" and str(path) in event["files"][0]


def test_status_file_is_written_private_even_over_a_readable_one(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "status.json"
    path.write_text("{}")
    (tmp_path / "status.tmp").write_text("")  # a leftover of a killed writer, 0644
    write_status(path, {"links": {}})
    assert mode(path) == 0o600 and json.loads(path.read_text())["links"] == {}


async def test_simulator_log_of_every_text_is_private(tmp_path: Path, umask_022: None) -> None:
    async with running(tmp_path) as r:
        assert (await r.link.submit(sms(text="Private text"))).message_id
    log = tmp_path / "sim.jsonl"
    assert "Private text" in log.read_text() and mode(log) == 0o600


async def test_retransmitted_cimd2_mo_is_logged_without_its_text() -> None:
    # The SMSC sends the same 20 twice (our 70 was lost): the retransmission is logged, its text not.
    with structlog.testing.capture_logs() as logs:
        async with scripted() as (_link, events, conn, _peer):
            conn.send(mo(0, text=MO_TEXT))
            assert (await conn.next()).op == Op.DELIVER_RESP
            assert (await conn.next()).op == Op.ALIVE  # asks whether the SMSC read the 70
            conn.send(mo(0, text=MO_TEXT))
            assert (await conn.next()).op == Op.DELIVER_RESP
            assert [m.text for m in events.delivered] == [MO_TEXT]
    retransmissions = [e for e in logs if e["event"] == "cimd2.retransmission"]
    assert retransmissions, [e["event"] for e in logs]
    assert "033=<22 chars>" in retransmissions[0]["packet"]
    assert not [e for e in logs if MO_TEXT in repr(e)]


def test_log_fields_named_like_a_text_or_a_secret_are_redacted() -> None:
    event = {"event": "x", "text": MO_TEXT, "body": "b", "smsc_password": "p", "context": "kept",
             "error_text": "ok"}  # fmt: skip
    assert _redact(None, "info", dict(event)) == {
        "event": "x", "text": "[redacted]", "body": "[redacted]", "smsc_password": "[redacted]",
        "context": "kept", "error_text": "ok",
    }  # fmt: skip


async def test_a_password_typed_as_the_user_name_is_not_logged_nor_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Outlook's user typed the password (with an `@`) into the user
    # name field and the address into the password's, three times, which locks that "login" at
    # the address. Neither the log, the status file nor `smsgw auth list` may show the text; a
    # mask that is the same for the three attempts stands in for it. A real user's address,
    # mistyped, is still shown as typed.
    secret = "Tr0ub4dor&3@home"
    tls = make_cert_pair(tmp_path / "tls")
    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, tls))
    cfg = load_config(config)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            await with_password(gw)
            port = gw.daemon.submission_port

            def outlook() -> list[str]:
                answers = []
                for user, password in [(secret, STAFF)] * 3 + [(STAFF, "typo")]:
                    with secure(port, tls) as c:
                        assert c.docmd("AUTH", "LOGIN " + b64(user))[0] == 334
                        answers.append(auth_reply(c.docmd(b64(password))))
                return answers

            answers = await blocking(outlook)
            assert answers == [replies.AUTH_INVALID] * 2 + [replies.AUTH_LOCKED, replies.AUTH_INVALID]
            deadline = time.monotonic() + 15
            while not (read_status(cfg.state_dir) or {}).get("auth_locks"):
                assert time.monotonic() < deadline, "no lock in the status file"
                await asyncio.sleep(0.1)
            status = json.dumps(read_status(cfg.state_dir))
            listed = await blocking(lambda: smsgw(config, "auth", "list"))
    assert listed.returncode == 0, listed.stderr
    for text in (repr(logs), caplog.text, status, listed.stdout):
        assert secret.casefold() not in text.casefold()
    failed = [e["login"] for e in logs if e["event"] == "submission.auth_failed"]
    mask = failed[0]
    assert mask.startswith("[unknown login #") and failed == [mask] * 3 + [STAFF]
    assert [e["login"] for e in logs if e["event"] == "submission.locked_out"] == [mask]
    assert f"address 127.0.0.1 login {mask}" in listed.stdout and "lift it by its address" in listed.stdout
