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


CA_CONFIG = """[ca]
default_ca = local
[local]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
"""


def make_expired_pair(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it issued for localhost / 127.0.0.1 that expired in 2021: (CA, cert,
    key). `openssl ca`, as `req` and `x509` of OpenSSL 3.0 cannot date a certificate in the past."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.cnf").write_text(CA_CONFIG)
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test-ca",
         "-days", "2"],
        ["openssl", "req", "-new", *ec, "-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=localhost",
         "-addext", f"subjectAltName={SUBJECT_ALT_NAMES}"],
        ["openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
         "-in", "req.csr", "-out", "cert.pem",
         "-startdate", "20200101000000Z", "-enddate", "20210101000000Z"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(step, check=True, capture_output=True, cwd=directory)
    return directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
