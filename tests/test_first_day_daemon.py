"""The administrator's first day against the running daemon: banner, status, STATUS=, send, submission."""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import smtplib
import ssl
import stat
import subprocess
from email import policy
from pathlib import Path

import pytest

from gateway.banner import _panel
from gateway.cli.status import daemon_state
from gateway.configservices import WebSection
from gateway.housekeeping import STATUS_FILE, status_line
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw, start_daemon
from tests.test_supervision import notify_socket


async def until(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_banner_status_on_stop_and_send(tmp_path: Path) -> None:
    smsc_port, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=smsc_port, smtp_port=smtp_port))
    config.chmod(0o640)
    async with HappySMSC(port=smsc_port) as smsc:
        proc = await start_daemon(config, smtp_port)
        try:
            status_file = tmp_path / "state" / STATUS_FILE
            await until(status_file.exists)
            events = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()]
            ready = next(e for e in events if e["event"] == "daemon.ready")
            assert ready["config"] == str(config) and ready["database"].endswith("smsgw.db")
            assert ready["relay"] == f"127.0.0.1:{smtp_port}" and ready["links"] == [
                f"main smpp 127.0.0.1:{smsc_port}"
            ]
            assert ready["simulator"] == "off" and ready["submission"].startswith("127.0.0.1:")
            assert ready["panel"] == "off" and ", panel off," in ready["summary"]
            assert ready["summary"].startswith(f"smsgw {ready['version']} ready: config {config}")
            # One event per happening: the link state is said once, not by two layers.
            await until(lambda: '"link.state"' in (tmp_path / "daemon.log").read_text())
            events = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()]
            said = [e["event"] for e in events]
            assert "simulator.started" not in said and "smpp.state" not in said and "link.state" in said

            res = await asyncio.to_thread(smsgw, config, "send", "+48601123456", "Hello admin", "--wait")
            assert res.returncode == 0, res.stderr
            assert "accepted: 250" in res.stdout and ": delivered" in res.stdout
            assert any(s.text == "Hello admin" for s in smsc.received)
            res = await asyncio.to_thread(smsgw, config, "status")
            assert "daemon    running" in res.stdout
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 60)
    assert proc.returncode == 0
    res = smsgw(config, "status")  # at once, not 30 s later
    assert res.returncode == 3 and "daemon    not running\n" in res.stdout  # a clean stop, not a crash
    assert not status_file.exists()


def test_a_status_left_by_a_killed_daemon_is_not_running(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    import time

    assert daemon_state({"pid": dead.pid, "updated_at": time.time()}, time.time()) is not None
    assert daemon_state({"pid": os.getpid(), "updated_at": time.time()}, time.time()) is None


def test_send_asks_who_sends_when_there_are_several_users(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    extra = '\n[[account]]\nname = "beta"\nusers = ["bob@beta.example"]\n'
    config.write_text(config_text(tmp_path, smsc_port=free_port(), extra=extra))
    from gateway.adminrules import seed_accounts
    from gateway.config import load_config
    from gateway.store.db import Store

    store = Store.open(tmp_path / "state" / "smsgw.db")
    seed_accounts(store, load_config(config))
    store.close()
    res = smsgw(config, "send", "+48601123456", "x")
    assert res.returncode == 2 and "--as" in res.stderr


async def test_systemctl_status_line_shows_queue_and_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    async with notify_socket(path) as received, running_gateway(make_config(tmp_path, smsc_port=free_port())):
        await until(lambda: any(m.startswith("STATUS=queued") for m in received))
    line = next(m for m in received if m.startswith("STATUS=queued"))
    assert line == "STATUS=queued 0, links up 0/1, outbox 0"


def test_status_line_names_workers_in_trouble() -> None:
    status = {"queued": 3, "outbox": 1, "links": {"a": {"state": "active"}, "b": {"state": "reconnecting"}},
              "workers": {"outbox": {"state": "stalled"}, "dispatcher": {"state": "running"}}}  # fmt: skip
    assert status_line(status) == "queued 3, links up 1/2, outbox 1, workers not running: outbox"


async def test_submission_works_out_of_the_box_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=free_port())
    assert cfg.smtp.tls_cert_file is None
    async with running_gateway(cfg) as gw:
        key = tmp_path / "state" / "selfsigned-key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        port = gw.daemon.submission_port

        def starttls() -> str:
            context = ssl.create_default_context(cafile=str(tmp_path / "state" / "selfsigned-cert.pem"))
            context.check_hostname = False
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
                client.starttls(context=context)
                code, _ = client.ehlo()
                assert code == 250
                return client.esmtp_features.get("auth", "")

        assert "PLAIN" in (await asyncio.to_thread(starttls)).upper()


async def test_a_bounce_gives_a_human_reason_next_to_the_operator_code(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(f"601123413@{DOMAIN}", "This one fails"))
            await sink.wait(1)
    report = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
    human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    expected = "the operator could not deliver it to the phone (UNDELIV err:001)"
    assert f"Reason: {expected}" in human
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    assert "UNDELIV err:001" in status.as_string()  # the machine-readable part keeps the raw code


async def test_a_refusal_at_submit_reads_in_words_next_to_the_smpp_status(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC(reject_suffixes=["0000"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(f"601120000@{DOMAIN}", "No such number"))
            await sink.wait(1)
            # The SMSC that refused it is named, as for a part it took: with several links, the
            # message page and /metrics' parts_total{link} showed such refusals under "-".
            parts = gw.store.db.conn.execute("SELECT state, link FROM parts").fetchall()
            assert parts == [("failed", "main")]
    report = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
    human = next(p for p in report.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Reason: the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)" in human
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    assert "ESME_RINVDSTADR (0x0B)" in status.as_string()


async def test_a_user_removed_from_a_seeded_account_stays_removed_and_state_is_private(
    tmp_path: Path,
) -> None:
    # config.toml's [[account]] is "created at first start if missing; manage it with smsgw account":
    # its users were added back at every start, so `smsgw user remove demo@example.com` lasted until
    # the next restart (and the demo login came back as operator, with a new panel password).
    config = make_config(tmp_path, smsc_port=free_port())
    old = os.umask(0o022)
    try:
        async with running_gateway(config) as gw:
            assert gw.store.accounts.find_user(STAFF) is not None
            await gw.store.write(lambda: gw.store.accounts.remove_user(STAFF))
    finally:
        os.umask(old)
    async with running_gateway(config) as gw:
        assert gw.store.accounts.find_user(STAFF) is None
        assert [a.name for a in gw.store.accounts.list_accounts()] == ["acme"]
    # Made by the daemon under umask 022: the database's directory is not listable by every user
    # (its group may pass, to the default billing_dir).
    assert stat.S_IMODE(config.state_dir.stat().st_mode) == 0o750


async def test_a_large_database_asks_systemd_for_time_to_check_it_before_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start reads the whole database (PRAGMA quick_check) before READY=1: 5 s cold for 745 MB,
    # so a store of some 15 million messages outlasted TimeoutStartSec (90 s) and every start was
    # killed. Here a small database stands for a large one: the assumed read speed is made tiny.
    from gateway import startprogress
    from gateway.store.db import Store

    config = make_config(tmp_path, smsc_port=free_port())
    Store.open(config.db_path).close()
    size = config.db_path.stat().st_size
    monkeypatch.setattr(startprogress, "CHECK_BYTES_PER_SECOND", size / 20)  # a 20 s read
    path = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    async with notify_socket(path) as received, running_gateway(config):
        await until(lambda: "READY=1" in received)
    extend = [m for m in received if m.startswith("EXTEND_TIMEOUT_USEC=")]
    assert len(extend) == 1 and received.index(extend[0]) < received.index("READY=1"), received
    assert 109 <= int(extend[0].split("=")[1]) / 1e6 <= 111  # the read and systemd's own 90 s


def test_the_banner_names_the_panel_as_a_browser_takes_it(tmp_path: Path) -> None:
    assert _panel(WebSection(enabled=True, listen="127.0.0.1:8080")) == "http://127.0.0.1:8080/"
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    secured = WebSection(enabled=True, listen="[::1]:8443", tls_cert_file=cert, tls_key_file=key)
    assert _panel(secured) == "https://[::1]:8443/"
