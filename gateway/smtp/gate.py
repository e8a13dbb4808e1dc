"""What an SMTP session works with: the daemon's `Gate` (the config, the store, the writes and the
guards both listeners share) and the `Sender` that MAIL settled and DATA reads.

Their own module because the relay and submission handlers, the daemon and an intake worker all
build or read them, while `gateway.smtp.relay` owns what each SMTP command decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from acl.lockout import AuthGuard
from gateway.bitelog import FaultLog
from gateway.config import Config
from gateway.queuedepth import Backlog
from gateway.smtp.accept import Writes
from gateway.smtp.guard import SessionGuard
from gateway.store.accountrecord import Account
from gateway.store.accounts import User
from gateway.store.db import Store

# A session's store faults (`Gate.store_log`) are logged as the relay's, where its commands are decided.
log = structlog.get_logger("gateway.smtp.relay")


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
    # A full disk refuses every mail: one line a second for all of them, not one each (`FaultLog`).
    store_log: FaultLog = field(init=False)

    def __post_init__(self) -> None:
        smtp = self.config.smtp
        if self.writes is None:
            self.writes = Writes(self.config, self.store, self.wake_dispatcher)
        self.sessions = SessionGuard.from_config(smtp)
        self.auth = AuthGuard.from_config(smtp, unlocks=self.store.admin.auth_unlocks_after)
        self.store_log = FaultLog(log)

    def now(self) -> datetime:
        """The store's clock in the installation's time zone (periods, quiet hours)."""
        return datetime.fromtimestamp(self.store.clock(), ZoneInfo(self.config.gateway.timezone))
