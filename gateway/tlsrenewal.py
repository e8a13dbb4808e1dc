"""Certificates renewed without a restart, and the daemon's look at them every minute.

Each context `gateway.tlscert.tls_context` makes is remembered (weakly), and `reload_changed`
(every minute, in each process serving one) loads a changed pair into the same `ssl.SSLContext`,
which the next handshake uses. A pair that does not load (a key of another certificate, a file half
copied) leaves the old one served and is tried again at the next look. `CertificateWatch` also says
again, once a day, what a verifying peer would refuse (`gateway.tlsdoubts`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from gateway.config import Config
from gateway.filemodes import create_private
from gateway.tlscert import (
    REMAKE,
    Served,
    Signature,
    files_signature,
    kept,
    selfsigned_here,
    selfsigned_paths,
    served_contexts,
)
from gateway.tlsdoubts import CertFacts, certificate_facts, configured_certificates, file_facts, setting_of
from smsc.tls import TlsFileError, refuse_passphrase

RELOAD_CHECK_SECONDS = 60.0  # how often the served files are looked at for a renewal
WARN_EVERY_SECONDS = 86400.0  # a certificate near or past its end is said once a day

log = structlog.get_logger(__name__)


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

    served: Served
    signature: Signature | None
    cert: bytes = b""
    key: bytes = b""
    error: str | None = None
    facts: CertFacts | None = None


def _read_candidate(
    served: Served, signature: Signature | None, hostname: str | None, now: float
) -> _Candidate:
    """Reads the changed pair and loads it into a scratch context: a broken pair never reaches the
    served one (a failed load_cert_chain may leave a context half changed)."""
    found = _Candidate(served, signature)
    try:
        found.cert, found.key = served.cert_file.read_bytes(), served.key_file.read_bytes()
        scratch = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        scratch.set_ciphers("DEFAULT:@SECLEVEL=0")  # a key the relay port's context takes passes here
        with _in_memory(found.cert, found.key) as (cert, key):
            # A renewal to a key with a passphrase: OpenSSL asked for it on the daemon's terminal, and
            # the watcher's thread waited there for good (a SIGTERM then waited for it too).
            scratch.load_cert_chain(cert, key, password=_refuse(served))
        where = f"{setting_of(served.section, served.cert_file, served.key_file)} {served.cert_file}"
        found.facts = certificate_facts(
            found.cert, where, hostname if served.section == "smtp" else None, now
        )
    except (OSError, ssl.SSLError, ValueError) as exc:
        found.error = str(exc) or type(exc).__name__
    return found


def _refuse(served: Served) -> Callable[[], str]:
    """The refusal of an encrypted key, naming the configured file (not the memory file loaded)."""
    return refuse_passphrase(served.key_file, f"[{served.section}] tls_key_file")


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
            ctx.load_cert_chain(cert, key, password=_refuse(served))
    except (OSError, ssl.SSLError, TlsFileError) as exc:  # checked a moment ago from the same bytes
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
    served_contexts[:] = [s for s in served_contexts if s.context() is not None]
    for served in list(served_contexts):
        signature = await asyncio.to_thread(files_signature, served.cert_file, served.key_file)
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
                **({"fix": REMAKE} if selfsigned_here(served.cert_file, served.key_file) else {}),
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
        except asyncio.CancelledError:
            # The daemon stopped during a look (the first runs at the start): the scheduler logged
            # that as the job failing, with a traceback, at an ordinary stop. The next start looks again.
            return
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


def keep_handed(cfg: Config) -> None:
    """In an intake worker, which never runs `make_selfsigned`: the [smtp] pair the daemon handed it
    (resolved by `with_certificate`) at the self-signed pair's paths in state_dir is that pair. Its
    renewal lines then name it as the daemon and `status` do (`setting_of`), with `REMAKE` as the
    fix, not as a "[smtp] tls_cert_file" the config does not have."""
    cert, key = (path.resolve() for path in selfsigned_paths(cfg))
    if (cfg.smtp.tls_cert_file, cfg.smtp.tls_key_file) == (cert, key):
        kept.add((cert, key))


async def watch_served(hostname: str | None = None) -> None:
    """`reload_changed` every minute, until cancelled (an intake worker's task; the daemon's
    scheduler runs the same look as a job)."""
    while True:
        try:
            await reload_changed(hostname)
        except Exception:  # tried again at the next look: the port keeps serving the old pair
            log.exception("tls.reload_check_failed")
        await asyncio.sleep(RELOAD_CHECK_SECONDS)
