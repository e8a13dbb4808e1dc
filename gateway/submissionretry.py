"""The submission port left off at the start, tried again while the daemon runs, and said meanwhile.

A start that found the self-signed pair's lock held past its wait (a `smsgw tls selfsigned` stopped
with Ctrl-Z, an openssl that hung) went on with the submission port off: the port refused every
mail client, `smsgw status` exited 0, /healthz said "ok", and nothing tried again once the holder
ended, until the next restart. Now a supervised worker tries every RETRY_SECONDS, without waiting
for the lock, and binds the port once it has a whole pair. Meanwhile the status file names why it
is off (`smsgw status` prints it and exits 1) and /healthz adds a warning line to its 200: the relay
port still takes mail. The reason may name a file or a process, and /healthz is public: it says
only that the port is off.

A half-set certificate (one of tls_cert_file and tls_key_file) is off for the config's sake; tried
again, it says the same, so the one worker covers every reason.

The relay port had no certificate for STARTTLS either: once the pair is had, the daemon's relay
server offers it from the next connection on. Intake processes took their config at their start
and have no word to take a new one on, so there the relay port serves mail servers in clear until
a restart, and `relay_starttls_off` says so (`smsgw status` prints it; mail flows, so it exits 0).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import structlog

from gateway.config import ConfigError
from gateway.listening import ListenError, open_submission
from gateway.smtp.servers import relay_tls_context
from gateway.supervisor import STALL_AFTER_SECONDS, Supervisor, Worker, beat
from gateway.tlscert import with_certificate

if TYPE_CHECKING:
    from gateway.daemon import Daemon
    from gateway.smtp.gate import Gate

log = structlog.get_logger(__name__)

RETRY_SECONDS = 60.0
WORKER = "submission"
HEALTH_WARNING = "submission port off: its certificate could not be had; smsgw status and the log say why"
RELAY_STARTTLS_OFF = (
    "relay port STARTTLS off until a restart: its certificate was had after the intake processes began"
)


class SubmissionRetry:
    """Why the configured submission port is off (`why_off`, None while it is on or not configured)."""

    def __init__(self, daemon: Daemon, gate: Gate, why_off: str | None) -> None:
        self.daemon, self.gate = daemon, gate
        configured = daemon.config.smtp.submission_addr is not None
        self.why_off = why_off if configured else None
        self.worker: Worker | None = None
        self.relay_starttls_off: str | None = None  # for the status file: mail servers send in clear

    def supervise(self, supervisor: Supervisor) -> None:
        """The retrying worker, only while the port is off; its warning is /healthz's line."""
        if self.why_off is None:
            return
        # It beats once a turn: a turn's sleep alone must not read as a stall.
        self.worker = supervisor.add(WORKER, self.run, stall_after=RETRY_SECONDS + STALL_AFTER_SECONDS)
        self.worker.warning = HEALTH_WARNING

    async def run(self) -> None:
        while True:
            beat()
            await asyncio.sleep(RETRY_SECONDS)
            beat()
            if self.why_off is not None and not self.gate.closing:
                await self.try_once()

    async def try_once(self) -> bool:
        """One try, the lock not waited for; whether the port is on now."""
        relay_tls: ssl.SSLContext | None = None
        try:
            cfg, why, made = await asyncio.to_thread(with_certificate, self.daemon.config, lock_wait=0)
            if why is None:
                relay_tls = relay_tls_context(cfg)  # before the bind: a pair it cannot load is tried again
                self.gate.config = cfg  # what the submission listener reads its certificate from
                server = await open_submission(self.daemon, self.gate)
                if server is not None and self.gate.closing:  # the stop began meanwhile: not served
                    server.close()
                    return False
                self.daemon.config = cfg
        except (ConfigError, ListenError, OSError) as exc:
            why = str(exc) or type(exc).__name__
        if why is not None:
            if why != self.why_off:
                log.warning("submission.off", reason=why, retry_in=RETRY_SECONDS)
            self.why_off = why
            return False
        self.why_off = None
        if self.worker is not None:
            self.worker.warning = None
        relay = self._offer_relay_starttls(relay_tls)
        log.info(
            "submission.on",
            port=getattr(self.daemon, "submission_port", None),
            cert=str(cfg.smtp.tls_cert_file),
            created=made,
            relay_starttls=relay,
            note="the submission port was off since the start; it takes mail clients now",
        )
        return True

    def _offer_relay_starttls(self, context: ssl.SSLContext | None) -> str:
        """The relay port's STARTTLS with the pair had late; what the log says of it."""
        if context is None:
            return "not offered (relay_starttls = false)"
        factory = getattr(self.daemon, "relay_factory", None)
        if factory is None:  # intake processes serve the relay port with the config they began with
            self.relay_starttls_off = RELAY_STARTTLS_OFF
            return RELAY_STARTTLS_OFF
        factory.tls_context = context
        return "offered from now on"
