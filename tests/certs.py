"""Self-signed certificate and key for 127.0.0.1 / localhost, for tests of the STARTTLS listener.

The `openssl` command line is used where it is installed (every Debian system has it); otherwise
the `cryptography` package, where that is installed. An EC P-256 key keeps generation fast.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from pathlib import Path

SUBJECT_ALT_NAMES = "DNS:localhost,IP:127.0.0.1"


class NoCertTool(RuntimeError):
    """Neither the openssl command nor the cryptography package is available."""


def make_cert_pair(directory: Path, *, backend: str = "auto") -> tuple[Path, Path]:
    """Write `cert.pem` and `key.pem` (unencrypted) into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if backend in ("auto", "openssl") and shutil.which("openssl"):
        _with_openssl(cert, key)
    elif backend in ("auto", "cryptography"):
        _with_cryptography(cert, key)
    else:
        raise NoCertTool("the openssl command is not installed")
    return cert, key


def _with_openssl(cert: Path, key: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=localhost", "-addext", f"subjectAltName={SUBJECT_ALT_NAMES}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _with_cryptography(cert: Path, key: Path) -> None:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        raise NoCertTool("neither the openssl command nor the cryptography package is installed") from exc
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
