"""What an SMTP session works with: the daemon's `Gate` (the config, the store, the writes and the
guards both listeners share) and the `Sender` that MAIL settled and DATA reads.

Their own module because the relay and submission handlers, the daemon and an intake worker all
build or read them, while `gateway.smtp.relay` owns what each SMTP command decides.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from acl.lockout import AuthGuard
from gateway.bitelog import FaultLog
from gateway.config import Config
from gateway.queuedepth import Backlog
from gateway.relayaddresses import RelayAddresses
from gateway.smtp.accept import Writes
from gateway.smtp.formerdomains import held_domains
from gateway.smtp.sessionguard import SessionGuard
from gateway.store.accountrecord import Account
from gateway.store.accounts import User
from gateway.store.db import Store
from gateway.store.knownlogins import PRUNE_CHUNK, KnownLoginsRepo

# A session's store faults (`Gate.store_log`) are logged as the relay's, where its commands are decided.
log = structlog.get_logger("gateway.smtp.relay")
auth_log = structlog.get_logger("acl.lockout")


@dataclass(slots=True)
class Sender:
    """Who this mail is from, settled at MAIL FROM and stashed on the envelope for DATA."""

    mail_from: str
    account: Account | None
    user: User | None
    # The envelope sender as received, when `mail_from` is recorded without the BATV tag its server
    # wrote into it: that server refuses a bounce to the untagged address, so DSNs go here.
    envelope: str | None = None


@dataclass(slots=True)
class Gate:
    """What the handler needs from the daemon; kept small so tests can build one."""

    config: Config
    store: Store
    wake_dispatcher: Callable[[], None] = lambda: None
    backlog: Callable[[], Backlog] = Backlog
    closing: bool = False
    replies: Counter[str] = field(default_factory=Counter)  # final reply lines by code, for /metrics
    # The sessions' writes: on `store` by default; an intake worker's go to the daemon.
    writes: Writes = None  # type: ignore[assignment]
    # One of each per daemon: both listeners count connections and failed logins together.
    sessions: SessionGuard = field(init=False)
    auth: AuthGuard = field(init=False)
    known_logins: KnownLoginsRepo = field(init=False)
    # A full disk refuses every mail: one line a second for all of them, not one each (`FaultLog`).
    store_log: FaultLog = field(init=False)
    # Domains taken out of [gateway] domains that conversations still name (`formerdomains`).
    former_domains: frozenset[str] = field(init=False)
    # The `[mail] relay` host's addresses, a bounce from which may be an answer mail's (`answerbounce`).
    relay_addresses: RelayAddresses = field(init=False)

    def __post_init__(self) -> None:
        smtp = self.config.smtp
        # The daemon's own gate, not an intake worker's (which serves the relay port only: no AUTH,
        # and its writes go to the daemon): it alone keeps the known-good logins in the database.
        daemon = self.writes is None
        if self.writes is None:
            self.writes = Writes(self.config, self.store, self.wake_dispatcher)
        self.sessions = SessionGuard.from_config(smtp)
        self.known_logins = KnownLoginsRepo(self.store.db, self.store.clock)
        self.auth = AuthGuard.from_config(
            smtp,
            unlocks=self.store.admin.auth_unlocks_after,
            keep=self._keep_known_good if daemon else None,
        )
        if daemon:
            self._load_known_good()
        self.store_log = FaultLog(log)
        self.former_domains = held_domains(self.store, self.config.gateway.domains, keep=daemon)
        self.relay_addresses = RelayAddresses(self.config.mail.relay, self.store.clock)

    def _load_known_good(self) -> None:
        """The clients each login succeeded from in the last 30 days, as written before the restart.

        A fault here must not stop the start: the guard then knows none, as it did before they
        were written down, and learns them again at each owner's next success."""
        guard = self.auth
        cutoff = guard.wall() - guard.known_good_seconds
        try:
            guard.load(self.known_logins.since(cutoff))
            expired = self.known_logins.any_before(cutoff)
        except Exception as exc:
            auth_log.warning("auth.known_good_read_failed", error=repr(exc))
            return
        if expired:
            self._prune_known_good(cutoff)

    def _prune_known_good(self, cutoff: float) -> None:
        """Delete the pairs past 30 days, a chunk per write (each its own piece of the group commit,
        so the clients' writes go between chunks), until a chunk finds fewer than it may take."""
        try:
            pruned = self.store.submit(lambda: self.known_logins.prune(cutoff))
        except Exception as exc:  # built outside the event loop (a test's gate), or a store refused
            auth_log.debug("auth.known_good_prune_skipped", error=repr(exc))
            return  # each written success deletes a chunk too

        def next_chunk(done: asyncio.Future[int]) -> None:
            _known_good_written(done)
            if not done.cancelled() and done.exception() is None and done.result() >= PRUNE_CHUNK:
                self._prune_known_good(cutoff)

        pruned.add_done_callback(next_chunk)

    def _keep_known_good(self, who: str, address: str, at: float) -> None:
        """Write a known-good pair (the guard calls this at a success, at most once a day a pair)
        through the group commit, as background work: the client's answer does not wait for it."""
        guard = self.auth
        try:
            written = self.store.submit(
                lambda: self.known_logins.record(
                    who, address, at, keep=guard.known_good_per_login, cutoff=at - guard.known_good_seconds
                )
            )
        except Exception as exc:  # the store refuses writes (replaced): the pair is still known in memory
            auth_log.warning("auth.known_good_write_failed", error=repr(exc))
            return
        written.add_done_callback(_known_good_written)

    def now(self) -> datetime:
        """The store's clock in the installation's time zone (periods, quiet hours)."""
        return datetime.fromtimestamp(self.store.clock(), ZoneInfo(self.config.gateway.timezone))


def _known_good_written(done: asyncio.Future[Any]) -> None:
    """Log a failed write of the known-good pairs; the guard goes on with what it holds in memory."""
    if not done.cancelled() and done.exception() is not None:
        auth_log.warning("auth.known_good_write_failed", error=repr(done.exception()))
