"""A self-signed pair the gateway made for an earlier [gateway] hostname is made again for the new one.

The pair in state_dir named the old host after the admin changed [gateway] hostname, and was kept
for good: check-config said nothing, the start logged nothing, `smsgw tls selfsigned` kept it
quietly and `status` blamed a "[smtp] tls_cert_file" the config does not have. Mail clients warned
of the certificate, and a mail server that verifies it refused it. The start, the commands and the
handshake are real; a pair the admin configured is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import ssl
from pathlib import Path

from structlog.testing import capture_logs

from gateway import tlscert, tlsrenewal
from gateway.config import parse_config
from gateway.tlsdoubts import configured_certificates
from tests.conftest import config_text, free_port, running_gateway
from tests.test_intake_workers import log_events, stop, until, worker_config_text
from tests.test_process import smsgw, start_daemon

OLD, NEW = "old.example.com", "sms.example.net"
SELF_SIGNED = "the self-signed pair in state_dir"


def names(cert: Path) -> list[str]:
    """The DNS names a verifying peer checks the host against."""
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def config_for(tmp_path: Path, hostname: str, extra_smtp: str = "") -> Path:
    text = config_text(tmp_path, smsc_port=free_port(), hostname=hostname)
    path = tmp_path / "config.toml"
    path.write_text(text.replace("[smtp]\n", f"[smtp]\n{extra_smtp}", 1))
    return path


def old_pair(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """The pair the gateway made while [gateway] hostname was OLD."""
    path = config_for(tmp_path, OLD)
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    cert, key, created = tlscert.make_selfsigned(cfg)
    assert created and names(cert) == [OLD, "localhost"]
    return cert, key, cert.read_bytes()


def starttls_as(port: int, cafile: Path, hostname: str) -> int:
    """A mail client that verifies the certificate against the name it connects to."""
    context = ssl.create_default_context(cafile=str(cafile))
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client._host = hostname  # type: ignore[attr-defined]  # the name checked, connecting to loopback
        client.starttls(context=context)
        return client.ehlo()[0]


async def test_the_start_makes_the_pair_again_for_the_new_hostname_and_serves_it(tmp_path: Path) -> None:
    cert, _, before = old_pair(tmp_path)
    path = config_for(tmp_path, NEW)
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            assert cert.read_bytes() != before and NEW in names(cert)
            assert await asyncio.to_thread(starttls_as, gw.daemon.submission_port, cert, NEW) == 250
            for _ in range(200):  # the first look at the certificates runs at the start
                if tlsrenewal.report():
                    break
                await asyncio.sleep(0.05)
            # `status` reads this: the pair is in no setting of the config
            assert list(tlsrenewal.report()) == [SELF_SIGNED]
    said = [e for e in logs if e["event"] == "tls.selfsigned_renamed"]
    assert said and said[0]["old_names"] == OLD and said[0]["hostname"] == NEW
    assert said[0]["log_level"] == "warning"


async def test_a_hostname_over_64_characters_gets_a_pair_and_submission_stays_on(tmp_path: Path) -> None:
    # OpenSSL refuses a CN over 64 characters; a hostname may have up to 253. The old pair was made
    # again for such a name, openssl failed, and submission went off.
    long = "mail-to-sms-gateway-for-the-regional-office.warszawa-mokotow.example.com"
    assert len(long) == 72
    cert, _, before = old_pair(tmp_path)
    path = config_for(tmp_path, long)
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    async with running_gateway(cfg) as gw:
        assert cert.read_bytes() != before and names(cert) == [long, "localhost"]
        assert await asyncio.to_thread(starttls_as, gw.daemon.submission_port, cert, long) == 250


async def test_a_pair_the_admin_configured_is_not_made_again(tmp_path: Path) -> None:
    cert, key, before = old_pair(tmp_path)
    path = config_for(tmp_path, NEW, configured_copy(tmp_path, cert, key))
    mine = tmp_path / "mine"
    cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            assert [where for where, _, _ in configured_certificates(gw.daemon.config)] == [
                "[smtp] tls_cert_file"
            ]
    assert (mine / "cert.pem").read_bytes() == before and cert.read_bytes() == before
    assert not [e for e in logs if e["event"] == "tls.selfsigned_renamed"]


def test_check_config_and_tls_selfsigned_say_the_kept_pair_is_for_another_name(tmp_path: Path) -> None:
    cert, _, before = old_pair(tmp_path)
    path = config_for(tmp_path, NEW)
    checked = smsgw(path, "check-config")
    assert checked.returncode == 0, checked.stderr
    assert f"is for {OLD}; the start makes a new one for {NEW}" in checked.stdout
    kept = smsgw(path, "tls", "selfsigned")
    assert kept.returncode == 0, kept.stderr
    assert f"made for {OLD}, not for {NEW}" in kept.stdout and "--force" in kept.stdout
    assert cert.read_bytes() == before  # kept, as asked
    forced = smsgw(path, "tls", "selfsigned", "--force")
    assert forced.returncode == 0 and NEW in names(cert)
    again = smsgw(path, "check-config")
    assert "the start makes a new one" not in again.stdout


def configured_copy(tmp_path: Path, cert: Path, key: Path) -> str:
    """The [smtp] lines of a pair the admin configured: a copy of the old self-signed one."""
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(cert, mine / "cert.pem")
    shutil.copy(key, mine / "key.pem")
    return f'tls_cert_file = "{mine / "cert.pem"}"\ntls_key_file = "{mine / "key.pem"}"\n'


def test_check_config_says_nothing_of_the_pair_when_a_certificate_is_configured(tmp_path: Path) -> None:
    cert, key, _ = old_pair(tmp_path)
    checked = smsgw(config_for(tmp_path, NEW, configured_copy(tmp_path, cert, key)), "check-config")
    assert checked.returncode == 0, checked.stderr
    assert "the start makes a new one" not in checked.stdout


async def test_an_intake_worker_names_the_renewed_pair_as_the_daemon_does(tmp_path: Path) -> None:
    # A worker never makes the pair, so its renewal lines named it "[smtp] tls_cert_file", a setting
    # the config does not have, while the daemon's said the pair in state_dir. Both look at the
    # files every 0.2 s here (a minute in production), set before any of their code runs.
    quick = tmp_path / "quick"
    quick.mkdir()
    (quick / "sitecustomize.py").write_text(
        "from gateway import tlsrenewal\ntlsrenewal.RELOAD_CHECK_SECONDS = 0.2\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (str(quick), os.environ.get("PYTHONPATH")))),
    }
    smtp_port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(worker_config_text(tmp_path, free_port(), smtp_port, 1, hostname=OLD))
    proc = await start_daemon(path, smtp_port, env=env)
    try:
        await until(lambda: bool(log_events(tmp_path, "intake.worker_serving")), "the worker serving")
        path.write_text(path.read_text().replace(OLD, NEW))  # the admin edits it and makes a new pair
        forced = await asyncio.to_thread(smsgw, path, "tls", "selfsigned", "--force")
        assert forced.returncode == 0, forced.stderr

        def doubts(by_worker: bool) -> list[str]:
            found = log_events(tmp_path, "tls.certificate_doubt")
            return [
                str(e["detail"]) for e in found if ("worker" in e) == by_worker and NEW in str(e["detail"])
            ]

        await until(
            lambda: bool(doubts(True) and doubts(False)), "the renewal seen by the daemon and its worker"
        )
        for detail in doubts(True) + doubts(False):
            assert detail.startswith(f"{SELF_SIGNED} "), detail
    finally:
        await stop(proc)
