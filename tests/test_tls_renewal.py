"""The certificate a mail server relies on: said when it is out of date, names another host or comes
without its chain, and a renewal served without a restart.

Found by an admin connecting a Postfix that verifies (`smtp_tls_security_level = verify`): an
expired certificate passed `check-config` ("config OK"), `run` and `status` said nothing, and every
SMS mail was deferred from the day it expired; certbot's renewal was not served until a restart.
Certificates are made here with `cryptography` (a CA and a server certificate it issued, dated at
will); `check-config` and `status` run as real processes, the renewal is read by a real TLS client
on the real relay port.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import smtplib
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from structlog.testing import capture_logs

from gateway import tlsdoubts, tlsrenewal
from gateway.config import parse_config
from tests.conftest import free_port, running_gateway
from tests.test_config_checks import smsgw, write
from tests.test_intake_workers import log_events, stop, until, worker_config_text
from tests.test_process import start_daemon
from tests.test_submission import blocking, submission_config_text

HOSTNAME = "sms.example.com"  # [gateway] hostname of the tests' config
UTC = datetime.UTC
NOW = datetime.datetime.now(UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Issuer:
    """A CA, as a company's or Let's Encrypt's intermediate is to the server certificate."""

    def __init__(self, common_name: str = "Test Intermediate CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name(common_name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=3650))
            .not_valid_after(NOW + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self, names: list[str], *, not_after: datetime.datetime, serial: int | None = None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(min(NOW, not_after) - datetime.timedelta(days=90))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert, key


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_pair(directory: Path, cert: bytes, key: bytes) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "fullchain.pem", directory / "privkey.pem"
    cert_file.write_bytes(cert)
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    return cert_file, key_file


def check_config(tmp_path: Path, cert: bytes, key: bytes) -> Any:
    pair = write_pair(tmp_path / "tls", cert, key)
    return smsgw("--config", str(write(tmp_path, submission_config_text(tmp_path, 1, pair))), "check-config")


# ---- check-config --------------------------------------------------------------------------------


def test_an_expired_certificate_is_said_with_its_date_and_the_config_still_passes(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=datetime.datetime(2025, 2, 1, tzinfo=UTC))
    done = check_config(tmp_path, pem(leaf, ca.cert), key_pem(key))
    # Still encryption for the servers that do not check: a warning, not a refusal.
    assert done.returncode == 0, done.stderr
    assert "config OK" in done.stdout
    assert "[smtp] tls_cert_file" in done.stderr and "expired on 2025-02-01" in done.stderr, done.stderr


def test_a_certificate_expiring_within_two_weeks_is_said(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=5, hours=1))
    done = check_config(tmp_path, pem(leaf, ca.cert), key_pem(key))
    assert done.returncode == 0, done.stderr
    assert f"expires on {(NOW + datetime.timedelta(days=5, hours=1)):%Y-%m-%d} " in done.stderr, done.stderr
    assert "in 5 day(s)" in done.stderr


def test_a_certificate_for_another_name_is_said(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue(["mail.acme.example"], not_after=NOW + datetime.timedelta(days=60))
    done = check_config(tmp_path, pem(leaf, ca.cert), key_pem(key))
    assert done.returncode == 0, done.stderr
    assert f"is for mail.acme.example, not for {HOSTNAME} ([gateway] hostname" in done.stderr, done.stderr


def test_a_wildcard_certificate_covers_the_hostname(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue(["*.example.com"], not_after=NOW + datetime.timedelta(days=60))
    done = check_config(tmp_path, pem(leaf, ca.cert), key_pem(key))
    assert done.returncode == 0, done.stderr
    assert "tls_cert_file" not in done.stderr, done.stderr


def test_a_server_certificate_without_its_issuer_is_said(tmp_path: Path) -> None:
    # certbot's cert.pem instead of fullchain.pem: a verifying server cannot build the chain.
    ca = Issuer("R11")
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=60))
    done = check_config(tmp_path, pem(leaf), key_pem(key))
    assert done.returncode == 0, done.stderr
    assert "without the certificate of its issuer (CN=R11)" in done.stderr, done.stderr
    assert "fullchain.pem" in done.stderr


def test_a_ca_certificate_served_first_is_said(tmp_path: Path) -> None:
    ca = Issuer("R11")
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=60))
    cert_file, _ = write_pair(tmp_path / "tls", pem(ca.cert, leaf), key_pem(key))
    # Served as is, the CA's certificate would not even match the key: what the file's first says is checked.
    facts = tlsdoubts.certificate_facts(
        cert_file.read_bytes(), "[smtp] tls_cert_file", HOSTNAME, NOW.timestamp()
    )
    assert any("the first certificate in the file is a CA's (CN=R11)" in d for d in facts.doubts), facts


def test_a_good_full_chain_is_not_doubted(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=60))
    done = check_config(tmp_path, pem(leaf, ca.cert), key_pem(key))
    assert done.returncode == 0, done.stderr
    assert "tls_cert_file" not in done.stderr, done.stderr


# ---- the running daemon --------------------------------------------------------------------------


def served_serial(port: int) -> int:
    """The serial of the certificate the relay port serves after STARTTLS, as a mail server sees it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only read here
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.acme.example")
        client.starttls(context=context)
        der = client.sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_a_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlsrenewal, "RELOAD_CHECK_SECONDS", 0.2, raising=False)  # a minute in production
    ca = Issuer()
    old, old_key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=20), serial=1001)
    new, new_key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=90), serial=1002)
    cert_file, key_file = write_pair(tmp_path / "tls", pem(old, ca.cert), key_pem(old_key))
    cfg = parse_config(
        submission_config_text(tmp_path, 1, (cert_file, key_file)), source="test", base_dir=tmp_path
    )
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            assert await blocking(lambda: served_serial(gw.port)) == 1001

            # certbot copies the chain first: until the key follows, the pair does not load.
            cert_file.write_bytes(pem(new, ca.cert))
            await gw.until(lambda: any(e["event"] == "tls.certificate_not_renewed" for e in logs))
            assert await blocking(lambda: served_serial(gw.port)) == 1001  # the old pair, still whole

            key_file.write_bytes(key_pem(new_key))
            await gw.until(lambda: any(e["event"] == "tls.certificate_renewed" for e in logs))
            assert await blocking(lambda: served_serial(gw.port)) == 1002
    renewed = [e for e in logs if e["event"] == "tls.certificate_renewed"]
    assert {e["serial"] for e in renewed} == {f"{1002:x}"}
    assert renewed[0]["log_level"] == "info"
    # (a look may also have caught the file half written: said too, and the old pair kept as well)
    refused = [e for e in logs if e["event"] == "tls.certificate_not_renewed"]
    assert {e["log_level"] for e in refused} == {"warning"}
    assert any("KEY_VALUES_MISMATCH" in e["error"] for e in refused), refused


async def test_status_says_a_certificate_near_its_end(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=3, hours=1))
    pair = write_pair(tmp_path / "tls", pem(leaf, ca.cert), key_pem(key))
    text = submission_config_text(tmp_path, 1, pair)
    config = write(tmp_path, text)
    status_file = tmp_path / "state" / "status.json"

    def said() -> bool:
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            return False
        return bool(status.get("tls", {}).get("[smtp] tls_cert_file", {}).get("doubts"))

    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        await gw.until(said)
        done = await blocking(lambda: smsgw("--config", str(config), "status"))
    tls_lines = [line for line in done.stdout.splitlines() if line.startswith("tls ")]
    assert len(tls_lines) == 1, done.stdout
    assert f"expires on {(NOW + datetime.timedelta(days=3, hours=1)):%Y-%m-%d} " in tls_lines[0]
    assert "in 3 day(s)" in tls_lines[0]


async def test_a_certificate_near_its_end_is_said_again_once_a_day(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=NOW + datetime.timedelta(days=10, hours=1))
    pair = write_pair(tmp_path / "tls", pem(leaf, ca.cert), key_pem(key))
    cfg = parse_config(submission_config_text(tmp_path, 1, pair), source="test", base_dir=tmp_path)
    monotonic = [1000.0]
    watch = tlsrenewal.CertificateWatch(cfg, monotonic=lambda: monotonic[0])

    async def said_after(seconds: float) -> list[str]:
        monotonic[0] += seconds
        with capture_logs() as logs:
            await watch.check()
        return [e["detail"] for e in logs if e["event"] == "tls.certificate_doubt"]

    assert await said_after(0) == []  # the start said it (check-config's words, logged by `run`)
    assert await said_after(3600) == []
    (daily,) = await said_after(86400 - 3600)
    assert "[smtp] tls_cert_file" in daily and "in 10 day(s)" in daily
    assert await said_after(60) == []
    assert len(await said_after(86400)) == 1
    assert tlsrenewal.report()["[smtp] tls_cert_file"]["doubts"] == [daily]


async def test_the_start_says_an_expired_certificate(tmp_path: Path) -> None:
    ca = Issuer()
    leaf, key = ca.issue([HOSTNAME], not_after=datetime.datetime(2025, 2, 1, tzinfo=UTC))
    cert, key_file = write_pair(tmp_path / "tls", pem(leaf, ca.cert), key_pem(key))
    smtp_port = free_port()
    text = worker_config_text(tmp_path, 1, smtp_port, 1)
    tls = f'[smtp]\ntls_cert_file = "{cert}"\ntls_key_file = "{key_file}"\n'
    proc = await start_daemon(write(tmp_path, text.replace("[smtp]\n", tls)), smtp_port)
    try:
        await until(lambda: bool(log_events(tmp_path, "intake.worker_serving")), "the worker serving")
        (doubt,) = log_events(tmp_path, "tls.certificate_doubt")
        assert doubt["level"] == "warning" and "expired on 2025-02-01" in str(doubt["detail"]), doubt
    finally:
        await stop(proc)


async def test_a_stop_during_a_look_at_the_certificates_is_no_failed_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first look runs at the start: a daemon stopped meanwhile had the scheduler log the job as
    # failed ("raised an exception", CancelledError, a traceback) at an ordinary stop.
    cfg = parse_config(submission_config_text(tmp_path, 1, None), source="test", base_dir=tmp_path)
    watch = tlsrenewal.CertificateWatch(cfg)
    reading, release = threading.Event(), threading.Event()

    def held(now: float) -> list[Any]:
        reading.set()
        release.wait(10)
        return []

    monkeypatch.setattr(watch, "_read", held)
    look = asyncio.create_task(watch.check())
    await asyncio.to_thread(reading.wait, 10)
    with capture_logs() as logs:
        look.cancel()
        try:
            await look  # the scheduler awaits the job so: a CancelledError here was its "failure"
        finally:
            release.set()
    assert logs == []
