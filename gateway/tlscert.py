"""The submission port's certificate: configured, from systemd credentials, or generated self-signed.

A fresh install with `submission_listen` set but no certificate would otherwise leave port 587
off, and the README's mail-client section would fail as pasted. So the first start writes a
self-signed pair into `state_dir` (the key private to the service user) and uses it until the
admin configures a real one; mail clients then ask once to trust it. Relative `tls_cert_file` and
`tls_key_file` names are looked up in `$CREDENTIALS_DIRECTORY` first (systemd `LoadCredential=`),
so the key can stay readable by root only.

A certificate is renewed without a restart: each context `tls_context` makes is remembered (weakly),
and `reload_changed` (every minute, in each process serving one) loads a changed pair into the same
`ssl.SSLContext`, which the next handshake uses. A pair that does not load (a key of another
certificate, a file half copied) leaves the old one served and is tried again at the next look.
`certificate_facts` says what a verifying mail server would refuse: a date past, near, or a name
or chain that does not fit; `check-config`, the start, the daily look and `status` say it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from gateway.config import Config, ConfigError
from gateway.configbase import credential_path
from gateway.filemodes import STATE_DIR_MODE, create_private, private_dir

SELF_CERT = "selfsigned-cert.pem"
SELF_KEY = "selfsigned-key.pem"
VALID_DAYS = 825  # the longest validity Apple clients accept for a server certificate
# A certificate this close to its end is said every day: certbot renews at 30 days left, so one
# still this close has a renewal that is failing, and the admin has two weeks to see to it.
RENEW_WARN_DAYS = 14
RELOAD_CHECK_SECONDS = 60.0  # how often the served files are looked at for a renewal
WARN_EVERY_SECONDS = 86400.0  # a certificate near or past its end is said once a day

log = structlog.get_logger(__name__)


class CertError(Exception):
    """No certificate could be generated (the openssl command is missing or failed)."""


def credential_or_path(cfg: Config, path: Path) -> Path:
    """A relative name found in systemd's credentials directory, else resolved beside the config."""
    found = credential_path(path)
    return found if found is not None and found.is_absolute() else cfg.path(path)


def selfsigned_paths(cfg: Config) -> tuple[Path, Path]:
    return cfg.state_dir / SELF_CERT, cfg.state_dir / SELF_KEY


def make_selfsigned(cfg: Config, *, force: bool = False) -> tuple[Path, Path, bool]:
    """Write the self-signed pair into state_dir unless present; returns (cert, key, created)."""
    cert, key = selfsigned_paths(cfg)
    if cert.exists() and key.exists() and not force:
        return cert, key, False
    private_dir(cfg.state_dir, STATE_DIR_MODE)  # as the daemon makes it
    name = cfg.gateway.hostname
    if not shutil.which("openssl"):
        raise CertError(
            "cannot make a self-signed certificate: the openssl command is not installed; install it"
            " or set smtp.tls_cert_file and smtp.tls_key_file"
        )
    key.unlink(missing_ok=True)
    create_private(key)  # 0600 before openssl writes the key into it
    result = subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", str(VALID_DAYS),
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CertError(f"openssl could not make a certificate: {result.stderr.strip()[-300:]}")
    return cert, key, True


def with_certificate(cfg: Config) -> tuple[Config, str | None, bool]:
    """The config the listeners use, why submission is off (None: it is on), and whether a pair was made.

    Configured paths are resolved (credentials directory first) so that the listener reads the
    right files; with none configured a self-signed pair in state_dir stands in.
    """
    smtp = cfg.smtp
    if smtp.submission_addr is None:
        return cfg, "smtp.submission_listen is not set", False
    created = False
    if smtp.tls_cert_file is None and smtp.tls_key_file is None:
        try:
            cert, key, created = make_selfsigned(cfg)
        except CertError as exc:
            return cfg, str(exc), False
    elif smtp.tls_cert_file is None or smtp.tls_key_file is None:
        return (
            cfg,
            "set both smtp.tls_cert_file and smtp.tls_key_file (or neither, for a self-signed one)",
            False,
        )
    else:
        cert, key = credential_or_path(cfg, smtp.tls_cert_file), credential_or_path(cfg, smtp.tls_key_file)
    update = {"tls_cert_file": cert.resolve(), "tls_key_file": key.resolve()}
    return cfg.model_copy(update={"smtp": smtp.model_copy(update=update)}), None, created


def tls_context(
    cert_file: Path, key_file: Path, *, opportunistic: bool = False, section: str = "smtp"
) -> ssl.SSLContext:
    """A server context (STARTTLS, or the panel's HTTPS with `section="web"`), or ConfigError
    naming the file that could not be used.

    `opportunistic` (the relay port): any TLS a mail server speaks, down to TLS 1.0 and old
    ciphers. There the alternative is not a stronger TLS but plain text: a server limited to TLS
    1.1 (old appliances, scanners, Exchange 2010) saw STARTTLS offered, failed the handshake with
    the default minimum of TLS 1.2, and deferred every mail instead of sending it in clear. Mail
    clients on the submission port keep the defaults."""
    for what, key, path in (("certificate", "tls_cert_file", cert_file), ("key", "tls_key_file", key_file)):
        try:
            path.open("rb").close()  # ssl's own error does not say which file is missing
        except OSError as exc:
            raise ConfigError(
                f"[{section}] {key}: cannot read the TLS {what} file {path}: {exc.strerror}"
            ) from exc
    signature = _signature(cert_file, key_file)  # before reading: a change while loading is seen next time
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if opportunistic:
        with warnings.catch_warnings():  # deprecated for what it protects; here it saves the clear
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        ctx.load_cert_chain(certfile=cert_file, keyfile=key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"[{section}] tls_cert_file, tls_key_file: cannot load the TLS certificate {cert_file}"
            f" with the key {key_file}: {exc}"
            " (PEM files expected; the key must match the certificate and not be encrypted)"
        ) from exc
    _served.append(_Served(weakref.ref(ctx), cert_file, key_file, section, signature))
    return ctx


# ---- what a verifying mail server would refuse --------------------------------------------------


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
    return x509.load_pem_x509_certificates(pem)


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """The names a peer checks (RFC 6125): the subjectAltName's DNS names and addresses, or without
    one the common name, as old peers still accept it."""
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


def configured_certificates(cfg: Config) -> list[tuple[str, Path, str | None]]:
    """(setting, file, host name to check or None) of each certificate the daemon serves from the
    config: [smtp] for the relay port's STARTTLS and submission, [web] for the panel."""
    found: list[tuple[str, Path, str | None]] = []
    smtp = cfg.smtp
    if smtp.tls_cert_file is not None:
        cert = credential_or_path(cfg, smtp.tls_cert_file)
        found.append(("[smtp] tls_cert_file", cert, cfg.gateway.hostname))
    web = cfg.web
    if web.enabled and web.tls_cert_file is not None:
        found.append(("[web] tls_cert_file", cfg.path(web.tls_cert_file), None))  # a name of its own
    return found


# ---- renewal without a restart ---------------------------------------------------------------------

Signature = tuple[tuple[int, int, int], ...]


def _signature(*paths: Path) -> Signature | None:
    """What tells a file replaced or rewritten (certbot copies, or links to a new archive file)."""
    try:
        stats = [p.stat() for p in paths]
    except OSError:
        return None
    return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in stats)


@dataclass
class _Served:
    """A context a listener serves, the files it was loaded from, and their state then."""

    context: weakref.ref[ssl.SSLContext]
    cert_file: Path
    key_file: Path
    section: str
    loaded: Signature | None
    refused: Signature | None = None  # the last pair that did not load: warned once, tried each look


_served: list[_Served] = []


@contextmanager
def _in_memory(*contents: bytes) -> Iterator[tuple[str, ...]]:
    """File names for bytes read once: the check and the load read the same pair, so a file
    rewritten between them cannot slip into the served context unchecked. Anonymous memory files
    (Linux); elsewhere files of a private temporary directory."""
    if not hasattr(os, "memfd_create"):
        with tempfile.TemporaryDirectory(prefix="smsgw-tls-") as tmp:  # 0700
            names = []
            for n, data in enumerate(contents):
                path = Path(tmp) / str(n)
                create_private(path)
                path.write_bytes(data)
                names.append(str(path))
            yield tuple(names)
        return
    fds = [os.memfd_create("smsgw-tls", os.MFD_CLOEXEC) for _ in contents]
    try:
        for fd, data in zip(fds, contents, strict=True):
            os.write(fd, data)
        yield tuple(f"/proc/self/fd/{fd}" for fd in fds)
    finally:
        for fd in fds:
            os.close(fd)


@dataclass
class _Candidate:
    """A changed pair read and checked off the loop, for the loop to load into the served context."""

    served: _Served
    signature: Signature | None
    cert: bytes = b""
    key: bytes = b""
    error: str | None = None
    facts: CertFacts | None = None


def _read_candidate(
    served: _Served, signature: Signature | None, hostname: str | None, now: float
) -> _Candidate:
    """Reads the changed pair and loads it into a scratch context: a broken pair never reaches the
    served one (a failed load_cert_chain may leave a context half changed)."""
    found = _Candidate(served, signature)
    try:
        found.cert, found.key = served.cert_file.read_bytes(), served.key_file.read_bytes()
        scratch = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        scratch.set_ciphers("DEFAULT:@SECLEVEL=0")  # a key the relay port's context takes passes here
        with _in_memory(found.cert, found.key) as (cert, key):
            scratch.load_cert_chain(cert, key)
        where = f"[{served.section}] tls_cert_file {served.cert_file}"
        found.facts = certificate_facts(
            found.cert, where, hostname if served.section == "smtp" else None, now
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        found.error = str(exc) or type(exc).__name__
    return found


def _apply(found: _Candidate) -> bool:
    """Loads a checked pair into the served context (on the loop: a context is not changed while
    another thread starts a handshake with it)."""
    served = found.served
    ctx = served.context()
    if ctx is None:  # its listener closed meanwhile
        served.loaded = found.signature
        return False
    try:
        with _in_memory(found.cert, found.key) as (cert, key):
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:  # checked a moment ago from the same bytes: not expected
        found.error = str(exc)
        return False
    served.loaded, served.refused = found.signature, None
    return True


async def reload_changed(
    hostname: str | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> int:
    """Serve renewed certificates: every context of this process whose files changed since loaded
    gets the new pair for the next handshakes (INFO), or keeps the old one (WARNING, tried again at
    the next look). Returns how many were renewed. Files are read off the loop."""
    renewed = 0
    _served[:] = [s for s in _served if s.context() is not None]
    for served in list(_served):
        signature = await asyncio.to_thread(_signature, served.cert_file, served.key_file)
        if signature == served.loaded:
            continue
        found = await asyncio.to_thread(_read_candidate, served, signature, hostname, clock())
        if found.error is None and served.context() is None:
            continue
        if found.error is None and _apply(found):
            renewed += 1
            facts = found.facts
            assert facts is not None  # (_apply loads only a checked pair)
            log.info(
                "tls.certificate_renewed",
                section=served.section,
                cert=str(served.cert_file),
                serial=f"{facts.serial:x}",
                not_after=facts.not_after.isoformat(),
                note="served to new connections; connections open keep the old one",
            )
            for doubt in facts.doubts:
                log.warning("tls.certificate_doubt", detail=doubt)
            continue
        if signature != served.refused:  # each broken state said once; it is read again each look
            served.refused = signature
            log.warning(
                "tls.certificate_not_renewed",
                section=served.section,
                cert=str(served.cert_file),
                key=str(served.key_file),
                error=found.error,
                note="the files changed but do not load as a pair (a key of another certificate, a file"
                " still being copied): the old certificate is served; tried again every minute",
            )
    return renewed


class CertificateWatch:
    """The daemon's look at its certificates every minute (a scheduler job): renewals served
    (`reload_changed`), and what `smsgw status` and the dashboard say about each configured
    certificate (`report`). One near or past its end is said again once a day; the start said it
    first (`gateway.configdoubts`), so the first look stays quiet."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hostname = cfg.gateway.hostname
        self.files = configured_certificates(cfg)
        self.clock = clock
        self.monotonic = monotonic
        self._said: dict[str, tuple[int, float]] = {}  # setting -> (serial, monotonic time said)
        _report.clear()  # a daemon started again in the same process (tests) shows its own

    async def check(self) -> None:
        try:
            await reload_changed(self.hostname, clock=self.clock)
            now = self.clock()
            found = await asyncio.to_thread(self._read, now)
        except Exception:  # a look that failed is tried again in a minute; it must not stop the job
            log.exception("tls.certificate_check_failed")
            return
        report: dict[str, Any] = {}
        for where, facts in found:
            if isinstance(facts, str):
                report[where] = {"doubts": [facts]}
                continue
            report[where] = {
                "not_after": facts.not_after.isoformat(),
                "serial": f"{facts.serial:x}",
                "doubts": list(facts.doubts),
            }
            self._daily(where, facts)
        _report.clear()
        _report.update(report)

    def _read(self, now: float) -> list[tuple[str, CertFacts | str]]:
        return [(where, file_facts(path, f"{where} {path}", host, now)) for where, path, host in self.files]

    def _daily(self, where: str, facts: CertFacts) -> None:
        mono = self.monotonic()
        said = self._said.get(where)
        if said is None or said[0] != facts.serial:
            self._said[where] = (facts.serial, mono)  # said at the start, or at its renewal
            return
        if facts.ending and mono - said[1] >= WARN_EVERY_SECONDS:
            self._said[where] = (facts.serial, mono)
            for doubt in facts.doubts:
                log.warning("tls.certificate_doubt", detail=doubt)


# What the daemon's last look found, by setting: read into the status file (`gateway.housekeeping`).
_report: dict[str, Any] = {}


def report() -> dict[str, Any]:
    """The certificates' state for the status file: {setting: {not_after, serial, doubts}}."""
    return {where: dict(facts) for where, facts in _report.items()}


async def watch_served(hostname: str | None = None) -> None:
    """`reload_changed` every minute, until cancelled (an intake worker's task; the daemon's
    scheduler runs the same look as a job)."""
    while True:
        try:
            await reload_changed(hostname)
        except Exception:  # tried again at the next look: the port keeps serving the old pair
            log.exception("tls.reload_check_failed")
        await asyncio.sleep(RELOAD_CHECK_SECONDS)
