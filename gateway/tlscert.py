"""The submission port's certificate: configured, from systemd credentials, or generated self-signed.

A fresh install with `submission_listen` set but no certificate would otherwise leave port 587
off, and the README's mail-client section would fail as pasted. So the first start writes a
self-signed pair into `state_dir` (the key private to the service user) and uses it until the
admin configures a real one; mail clients then ask once to trust it. Relative `tls_cert_file` and
`tls_key_file` names are looked up in `$CREDENTIALS_DIRECTORY` first (systemd `LoadCredential=`),
so the key can stay readable by root only.

The pair is written under temporary names and put in place only once both files are whole: openssl
exits 0 when a write of its output fails (a full disk left an empty certificate beside the key), and
the start after the admin freed the room met that pair, refused to load it and exited 3, which
systemd does not restart. A full disk is an OSError (ENOSPC), so the start exits 1 and says the room
left; an incomplete pair left by an earlier release is made again. Two renames put a new pair in
place, and no rename replaces two files at once: a crash between them (`smsgw tls selfsigned
--force` killed, the power lost) left the new key beside the old certificate, and every start then
refused the pair and exited 3. A pair whose key is not the certificate's is made again too, at the
next start or command: being self-signed, nothing else can mend it.

A start and `smsgw tls selfsigned --force` at once took turns with no lock between them: the start
found the command's pair torn between its renames and made a new one, then the command's second
rename tore it again, and the start exited 3. Each now holds an exclusive `flock` on SELF_LOCK in
state_dir from its look at the pair to its last rename. Under it, work directories of a run killed
(-9, the power lost) while openssl ran are removed: each held a private key, and nothing else did.
A whole matching pair is kept without waiting for the lock, and the lock is waited for at most
LOCK_WAIT_SECONDS, saying so: a command stopped with Ctrl-Z (or an openssl that hung) held it, and
every start waited for it for good, saying nothing, until systemd's start timeout killed it.
A start that gave up left submission off for good, nothing saying so: the running daemon now tries
again every minute without waiting for the lock (`gateway.submissionretry`), and says it is off.

Each context `tls_context` makes is remembered (weakly, with its files' state then), so that a
renewed certificate is served without a restart (`gateway.tlsrenewal`); what a verifying mail
server would refuse in one is `gateway.tlsdoubts`'.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.config import Config, ConfigError
from gateway.configbase import credential_path
from gateway.filemodes import STATE_DIR_MODE, create_private, private_dir
from gateway.store.proclocks import flock_holders, process_command
from gateway.store.rescue import fsync_path
from smsc.tls import TlsFileError, refuse_passphrase

SELF_CERT = "selfsigned-cert.pem"
SELF_KEY = "selfsigned-key.pem"
SELF_LOCK = ".tls-selfsigned.lock"  # not a `WORK_PREFIX` name: the leftovers' removal spares it
WORK_PREFIX = ".selfsigned."  # a run's work directory in state_dir
VALID_DAYS = 825  # the longest validity Apple clients accept for a server certificate
MIN_ROOM_BYTES = 64 * 1024  # less left beside a pair openssl did not write whole: the disk is full
LOCK_WAIT_SECONDS = 30.0  # for another process making the pair: openssl takes well under a second
LOCK_RETRY_SECONDS = 0.1

log = structlog.get_logger(__name__)


class CertError(Exception):
    """No certificate could be generated (the openssl command is missing or failed)."""


def credential_or_path(cfg: Config, path: Path) -> Path:
    """A relative name found in systemd's credentials directory, else resolved beside the config."""
    found = credential_path(path)
    return found if found is not None and found.is_absolute() else cfg.path(path)


def selfsigned_paths(cfg: Config) -> tuple[Path, Path]:
    return cfg.state_dir / SELF_CERT, cfg.state_dir / SELF_KEY


def make_selfsigned(
    cfg: Config, *, force: bool = False, lock_wait: float | None = None, renamed: bool = False
) -> tuple[Path, Path, bool]:
    """Write the self-signed pair into state_dir unless a whole one is there; (cert, key, created).

    OSError (ENOSPC where the disk is full) when the pair cannot be written: nothing is left under
    its names then, so the next start makes it again. `lock_wait`: how long the lock is waited for
    (None: LOCK_WAIT_SECONDS; 0, the running daemon's retry, not at all). `renamed` (the start): a
    pair made for another [gateway] hostname is made again for this one, said at WARNING: kept, it
    was served for the old name after the admin changed it, and mail clients warned of it and mail
    servers that verify it refused it, nothing saying why."""
    private_dir(cfg.state_dir, STATE_DIR_MODE)  # as the daemon makes it
    cert, key = selfsigned_paths(cfg)
    kept.add((cert.resolve(), key.resolve()))
    if not force and whole_pair(cert, key) and not (renamed and _named_other(cfg, cert)):
        # renames put whole files in place: seen whole, it is
        with _pair_lock(cfg.state_dir, wait=False) as held:
            if held:  # else the holder's work directory is in use
                _remove_leftovers(cfg.state_dir)
        return cert, key, False
    with _pair_lock(cfg.state_dir, seconds=lock_wait) as _:
        _remove_leftovers(cfg.state_dir)
        old = _named_other(cfg, cert) if renamed else None
        if not force and whole_pair(cert, key) and old is None:
            return cert, key, False
        _generate(cfg, cert, key)
    if old is not None and not force:
        log.warning(
            "tls.selfsigned_renamed",
            cert=str(cert),
            old_names=", ".join(old),
            hostname=cfg.gateway.hostname,
            note="the self-signed pair in state_dir was made for another [gateway] hostname: made again"
            " for this one; mail clients that trusted the old one ask to trust it once more",
        )
    return cert, key, True


def _named_other(cfg: Config, cert: Path) -> tuple[str, ...] | None:
    """The names of the pair's certificate when none is [gateway] hostname (`gateway.tlsdoubts`,
    imported here: it imports this module at its top)."""
    from gateway.tlsdoubts import other_names

    return other_names(cert, cfg.gateway.hostname)


def whole_pair(cert: Path, key: Path) -> bool:
    """Both files there, neither cut short, the key the certificate's."""
    if not (cert.exists() and key.exists()) or incomplete(cert) or incomplete(key):
        return False
    return not mismatched(cert, key)


# The pairs `make_selfsigned` keeps in this process: a pair that does not load names the command that
# makes a new one only when it is one of these, not any file of the same name an admin configured.
kept: set[tuple[Path, Path]] = set()  # (and the daemon's handed to an intake worker)
REMAKE = "`smsgw tls selfsigned --force` makes a new pair"


def selfsigned_here(cert_file: Path, key_file: Path) -> bool:
    """Whether the pair is the self-signed one this process made or kept in state_dir: only then is
    `tls selfsigned --force` the way to mend it (a configured pair of the same name is the admin's)."""
    return (cert_file.resolve(), key_file.resolve()) in kept


@contextmanager
def _pair_lock(state_dir: Path, *, wait: bool = True, seconds: float | None = None) -> Iterator[bool]:
    """The pair's lock (whether it is held): another process holding it is between its look and its
    last rename. Waited for up to `seconds` (LOCK_WAIT_SECONDS; `wait`), then CertError naming its holder."""
    path = state_dir / SELF_LOCK
    seconds = LOCK_WAIT_SECONDS if seconds is None else seconds
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + seconds
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    yield False
                    return
                if time.monotonic() >= deadline:
                    held = f"has been held for over {seconds:g} s" if seconds > 0 else "is held"
                    raise CertError(
                        f"cannot make the self-signed certificate: {path} {held}"
                        f" by {lock_holder(fd)}, which makes the pair (a"
                        " `smsgw tls selfsigned` stopped or hung?); end it, or set [smtp] tls_cert_file"
                        " and tls_key_file"
                    ) from None
                if not said:
                    said = True
                    log.warning(
                        "tls.selfsigned_lock_wait",
                        lock=str(path),
                        holder=lock_holder(fd),
                        wait_seconds=seconds,
                        note="another process is making the self-signed pair: waiting for it to finish",
                    )
                time.sleep(LOCK_RETRY_SECONDS)
        yield True
    finally:
        os.close(fd)  # the lock goes with it


def lock_holder(fd: int) -> str:
    """Who holds the flock on `fd`'s file, as /proc/locks tells it (Linux): its pid, its command
    and whether it is stopped; "another process" where that cannot be read."""
    for pid in flock_holders(fd) or ():
        if pid == os.getpid():
            continue
        command = process_command(pid)  # shell words, never a raw line break of a `python -c` script
        try:
            stopped = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in "Tt"
        except (OSError, IndexError):
            return f"process {pid}"
        said = f"process {pid} ({command})" if command else f"process {pid}"
        return f"{said}, stopped" if stopped else said
    return "another process"


def _remove_leftovers(state_dir: Path) -> None:
    """Work directories of a run that was killed: under the lock, no other run is using one."""
    for entry in state_dir.glob(f"{WORK_PREFIX}*"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _generate(cfg: Config, cert: Path, key: Path) -> None:
    """A new pair by openssl, put in place once both files are whole."""
    name = cfg.gateway.hostname
    if not shutil.which("openssl"):
        raise CertError(
            "cannot make a self-signed certificate: the openssl command is not installed; install it"
            " or set [smtp] tls_cert_file and tls_key_file"
        )
    # A directory only this user reaches (mkdtemp: 0700), removed whatever happens.
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=cfg.state_dir))
    try:
        new_cert, new_key = work / SELF_CERT, work / SELF_KEY
        create_private(new_key)  # 0600 before openssl writes the key into it
        result = subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", str(VALID_DAYS),
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-keyout", str(new_key), "-out", str(new_cert), "-subj", f"/CN={common_name(name)}",
                "-addext", f"subjectAltName=DNS:{name},DNS:localhost,IP:127.0.0.1",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0 or incomplete(new_cert) or incomplete(new_key):
            _refuse_unwritten(cfg.state_dir, result)
        for made in (new_key, new_cert):
            fsync_path(made, os.O_RDONLY)  # a full disk may show only here (delayed allocation)
        os.replace(new_key, key)
        os.replace(new_cert, cert)
        fsync_path(cfg.state_dir, os.O_RDONLY | os.O_DIRECTORY)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def common_name(hostname: str) -> str:
    """The pair's CN: OpenSSL refuses one over 64 characters, where a hostname may have 253, and no
    pair was made for a longer one (submission off, openssl failing again each minute). Peers check
    the subjectAltName, which has the whole name; the CN is then its first label (63 at most)."""
    return hostname if len(hostname) <= 64 else hostname.split(".", 1)[0]


def incomplete(path: Path) -> bool:
    """Whether a PEM file is empty or cut short (no END line): a write that failed, not an admin's
    choice. A file that cannot be read is not: loading it says why."""
    try:
        return b"-----END " not in path.read_bytes()[-200:]
    except OSError:
        return False


def mismatched(cert: Path, key: Path) -> bool:
    """Whether the key is not the certificate's (a crash between the renames of a new pair). A pair
    that cannot be loaded for another reason is not: loading it says why."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(certfile=cert, keyfile=key, password=refuse_passphrase(key))
    except ssl.SSLError as exc:
        return exc.reason == "KEY_VALUES_MISMATCH"
    except (OSError, TlsFileError):
        return False
    return False


def _refuse_unwritten(state_dir: Path, result: subprocess.CompletedProcess[str]) -> None:
    """openssl failed, or wrote a pair that is not whole: ENOSPC where the disk has no room left,
    CertError otherwise."""
    said = result.stderr.strip()[-300:]
    try:
        st = os.statvfs(state_dir)
        full = st.f_bavail * st.f_frsize < MIN_ROOM_BYTES
    except OSError:
        full = False
    if full or "No space left" in said:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(state_dir / SELF_CERT))
    if result.returncode != 0:
        raise CertError(f"openssl could not make a certificate: {said}")
    raise CertError(f"openssl wrote an incomplete certificate or key: {said or 'it said nothing'}")


def with_certificate(cfg: Config, *, lock_wait: float | None = None) -> tuple[Config, str | None, bool]:
    """The config the listeners use, why submission is off (None: it is on), and whether a pair was made.

    Configured paths are resolved (credentials directory first) so that the listener reads the
    right files; with none configured a self-signed pair in state_dir stands in (`lock_wait` as for
    `make_selfsigned`: the running daemon's retry, `gateway.submissionretry`, waits for no lock).
    """
    smtp = cfg.smtp
    if smtp.submission_addr is None:
        return cfg, "[smtp] submission_listen is not set", False
    created = False
    if smtp.tls_cert_file is None and smtp.tls_key_file is None:
        try:
            cert, key, created = make_selfsigned(cfg, lock_wait=lock_wait, renamed=True)
        except CertError as exc:
            return cfg, str(exc), False
    elif smtp.tls_cert_file is None or smtp.tls_key_file is None:
        return (
            cfg,
            "set both [smtp] tls_cert_file and tls_key_file (or neither, for a self-signed one)",
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
    seen = files_signature(cert_file, key_file)  # before reading: a change while loading is seen next time
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if opportunistic:
        with warnings.catch_warnings():  # deprecated for what it protects; here it saves the clear
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        # A key with a passphrase is refused, not asked for: OpenSSL's prompt held `run` at a terminal
        # and failed "Invalid argument" under systemd, neither naming the key.
        ctx.load_cert_chain(
            certfile=cert_file,
            keyfile=key_file,
            password=refuse_passphrase(key_file, f"[{section}] tls_key_file"),
        )
    except TlsFileError as exc:
        raise ConfigError(str(exc)) from None
    except (ssl.SSLError, OSError) as exc:
        remake = f"; {REMAKE}" if selfsigned_here(cert_file, key_file) else ""
        raise ConfigError(
            f"[{section}] tls_cert_file, tls_key_file: cannot load the TLS certificate {cert_file}"
            f" with the key {key_file}: {exc}"
            f" (PEM files expected; the key must match the certificate and not be encrypted){remake}"
        ) from exc
    served_contexts.append(Served(weakref.ref(ctx), cert_file, key_file, section, seen))
    return ctx


# ---- the contexts served, for renewals (`gateway.tlsrenewal`) ---------------------------------

Signature = tuple[tuple[int, int, int], ...]


def files_signature(*paths: Path) -> Signature | None:
    """What tells a file replaced or rewritten (certbot copies, or links to a new archive file)."""
    try:
        stats = [p.stat() for p in paths]
    except OSError:
        return None
    return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in stats)


@dataclass
class Served:
    """A context a listener serves, the files it was loaded from, and their state then."""

    context: weakref.ref[ssl.SSLContext]
    cert_file: Path
    key_file: Path
    section: str
    loaded: Signature | None
    refused: Signature | None = None  # the last pair that did not load: warned once, tried each look


served_contexts: list[Served] = []  # read by `gateway.tlsrenewal`
