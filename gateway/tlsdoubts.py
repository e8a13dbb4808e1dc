"""What a verifying mail server would refuse in a certificate the gateway serves: a date past or
near, or a name or chain that does not fit (`certificate_facts`).

A peer that does not check still gets encryption from an expired certificate, so each finding is a
doubt worded for the admin, never a refusal; `check-config`, the start, the daily look
(`gateway.tlsrenewal.CertificateWatch`) and `status` say them.

The cryptography package is imported when a certificate is read: `check-config`, `status` and other
commands import this module for a config that serves none (40 ms of CPU each, on the tests' hundreds).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import Config
from gateway.tlscert import credential_or_path, selfsigned_here, selfsigned_paths

if TYPE_CHECKING:
    from cryptography import x509

# What the self-signed pair is called where it is said: it is in no setting, and "[smtp] tls_cert_file"
# sent the admin to look for a line the config does not have.
SELF_SIGNED = "the self-signed pair in state_dir"

# A certificate this close to its end is said every day: certbot renews at 30 days left, so one
# still this close has a renewal that is failing, and the admin has two weeks to see to it.
RENEW_WARN_DAYS = 14


@dataclass(frozen=True)
class CertFacts:
    """The served (first) certificate of a PEM file, and what is wrong with it for a verifying peer."""

    serial: int
    not_after: datetime
    names: tuple[str, ...]
    doubts: tuple[str, ...]
    ending: bool  # expired, or expires within RENEW_WARN_DAYS: said again every day


def read_chain(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM file in order; ValueError for none (not PEM, half written)."""
    from cryptography import x509

    return x509.load_pem_x509_certificates(pem)


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """The names a peer checks (RFC 6125): the subjectAltName's DNS names and addresses, or without
    one the common name, as old peers still accept it."""
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    dns = san.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return (*dns, *ips)


def name_covers(pattern: str, hostname: str) -> bool:
    """A certificate name fits the host: the same (in any case, trailing dot aside), an address the
    same address, or a wildcard `*.example.com` standing for exactly one leftmost label."""
    want = hostname.rstrip(".").lower()
    have = pattern.rstrip(".").lower()
    try:
        return ipaddress.ip_address(want) == ipaddress.ip_address(have)
    except ValueError:
        pass
    if have.startswith("*."):
        first, _, rest = want.partition(".")
        return bool(first) and rest == have[2:]
    return have == want


def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID

    try:
        return bool(cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca)
    except x509.ExtensionNotFound:
        return False


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def certificate_facts(pem: bytes, where: str, hostname: str | None, now: float) -> CertFacts:
    """What a mail server checking the certificate (Postfix `smtp_tls_security_level = verify`)
    would refuse, worded for the admin: `where` names the setting and file. An expired one is still
    encryption for a peer that does not check, so each is a doubt, not a refusal. `hostname` (the
    name SMTP greets with and clients connect to) is checked against the names; None skips that.
    Raises ValueError for a file holding no certificate."""
    chain = read_chain(pem)
    leaf = chain[0]
    not_after = leaf.not_valid_after_utc
    names = _names(leaf)
    doubts: list[str] = []
    left = not_after.timestamp() - now
    ending = left < RENEW_WARN_DAYS * 86400
    if left <= 0:
        doubts.append(
            f"{where}: the certificate expired on {_day(not_after)}; mail servers that verify it"
            " (Postfix smtp_tls_security_level = verify) defer every mail to the gateway: renew it"
            " (a renewal is served within a minute, no restart needed)"
        )
    elif ending:
        doubts.append(
            f"{where}: the certificate expires on {_day(not_after)}, in {left / 86400:.0f} day(s); renew it"
            " (a renewal is served within a minute, no restart needed)"
        )
    if hostname is not None and names and not any(name_covers(n, hostname) for n in names):
        doubts.append(
            f"{where}: the certificate is for {', '.join(names)}, not for {hostname} ([gateway] hostname,"
            " the name the gateway greets with and mail servers connect to); a mail server that verifies"
            " it refuses it"
        )
    self_signed = leaf.issuer == leaf.subject
    # (a self-signed server certificate alone is often marked CA: `openssl req -x509` does so)
    if _is_ca(leaf) and (not self_signed or len(chain) > 1):
        doubts.append(
            f"{where}: the first certificate in the file is a CA's ({leaf.subject.rfc4514_string()}), not"
            " the server's: put the server's certificate first, then its chain (certbot's fullchain.pem)"
        )
    elif not self_signed and not any(c.subject == leaf.issuer for c in chain[1:]):
        doubts.append(
            f"{where}: the file holds the server's certificate without the certificate of its issuer"
            f" ({leaf.issuer.rfc4514_string()}); mail servers that verify it cannot build the chain:"
            " use the full chain (certbot's fullchain.pem)"
        )
    return CertFacts(leaf.serial_number, not_after, names, tuple(doubts), ending)


def file_facts(path: Path, where: str, hostname: str | None, now: float) -> CertFacts | str:
    """`certificate_facts` of a file, or why it could not be read (said as a doubt: the load itself
    is refused elsewhere, with the key)."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        return f"{where}: cannot read {path}: {exc.strerror}"
    try:
        return certificate_facts(pem, where, hostname, now)
    except ValueError as exc:
        return f"{where}: {path} holds no PEM certificate ({exc})"


def other_names(cert: Path, hostname: str) -> tuple[str, ...] | None:
    """The names of the certificate in `cert` when none of them is `hostname`, else None (also for a
    file that cannot be read as one: loading it says why). For the self-signed pair, which the
    gateway made for the [gateway] hostname of its day."""
    try:
        names = _names(read_chain(cert.read_bytes())[0])
    except (OSError, ValueError):
        return None
    if not names or any(name_covers(n, hostname) for n in names):
        return None
    # localhost and 127.0.0.1 are in every pair the gateway makes: the name it was made for is the rest.
    own = tuple(n for n in names if n not in ("localhost", "127.0.0.1"))
    return own or names


def selfsigned_other_name(cfg: Config) -> str | None:
    """What `check-config` says of a self-signed pair in state_dir made for another [gateway]
    hostname, where the start serves that pair (submission on, no certificate configured): the start
    makes it again (`gateway.tlscert.make_selfsigned`), and mail clients then ask to trust it again."""
    smtp = cfg.smtp
    if smtp.submission_addr is None or smtp.tls_cert_file is not None or smtp.tls_key_file is not None:
        return None
    cert, _ = selfsigned_paths(cfg)
    old = other_names(cert, cfg.gateway.hostname)
    if old is None:
        return None
    return (
        f"{SELF_SIGNED} ({cert}) is for {', '.join(old)}; the start makes a new one for"
        f" {cfg.gateway.hostname} ([gateway] hostname), which mail clients ask to trust once more"
    )


def setting_of(section: str, cert: Path, key: Path) -> str:
    """Where a served certificate comes from, as the admin finds it: its setting, or the self-signed
    pair the gateway made in state_dir when none is set."""
    return SELF_SIGNED if selfsigned_here(cert, key) else f"[{section}] tls_cert_file"


def configured_certificates(cfg: Config) -> list[tuple[str, Path, str | None]]:
    """(setting, file, host name to check or None) of each certificate the daemon serves from the
    config: [smtp] for the relay port's STARTTLS and submission, [web] for the panel. The daemon's
    config names the self-signed pair it serves in [smtp] (`gateway.tlscert.with_certificate`): that
    one is said as the pair in state_dir, which is in no setting."""
    found: list[tuple[str, Path, str | None]] = []
    smtp = cfg.smtp
    if smtp.tls_cert_file is not None:
        cert = credential_or_path(cfg, smtp.tls_cert_file)
        key = credential_or_path(cfg, smtp.tls_key_file) if smtp.tls_key_file is not None else cert
        found.append((setting_of("smtp", cert, key), cert, cfg.gateway.hostname))
    web = cfg.web
    if web.enabled and web.tls_cert_file is not None:
        found.append(("[web] tls_cert_file", cfg.path(web.tls_cert_file), None))  # a name of its own
    return found
