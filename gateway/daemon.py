"""The daemon's lifecycle: config → logging → store → links → SMTP servers → run → graceful stop.

Startup recovers what a crash left behind (parts and mails caught `active`) before any link or
listener starts, so that the queue is consistent when the first SMS goes out. Shutdown runs in the
reverse order: stop accepting mail (`421` to new commands), let in-flight submits be answered,
unbind, and close the database; whatever did not finish stays in the store for the next start.
The stop is triggered by an injectable event so tests drive it without signals.

A database file deleted or replaced while the daemon runs stops it the same way, after which
`run` raises `StoreReplaced`: `smsgw run` exits with status 1 (a failure, so systemd's
`Restart=on-failure` starts it again on the file now in place).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import structlog

from gateway.config import Config
from gateway.dispatcher import Dispatcher
from gateway.events import GatewayEvents, Notifier
from gateway.housekeeping import STATUS_FILE, Housekeeping
from gateway.mailer import Mailer, OutboxWorker, build_mailer
from gateway.routing import Router
from gateway.smtp.relay import Gate, start_smtp_server
from gateway.store.accounts import Conflict
from gateway.store.db import Store, StoreReplaced
from gateway.supervisor import Supervisor, sd_notify
from smsc.base import SmscLink
from smsc.pacing import LinkPacer

log = structlog.get_logger(__name__)

FILE_CHECK_SECONDS = 2.0  # how often an idle daemon looks whether its database file was replaced


def build_link(cfg: Config, index: int) -> SmscLink:
    link_cfg = cfg.smsc[index]
    password = link_cfg.secret(cfg.base_dir)
    settings = link_cfg.driver_settings()
    if link_cfg.type == "smpp":
        from smsc.smpp.link import SmppLink

        return SmppLink(settings, password=password)
    from smsc.cimd2.link import Cimd2Link

    return Cimd2Link(settings, password=password)


def seed_accounts(store: Store, cfg: Config) -> None:
    """Create the accounts the config declares, if missing; never overwrite an admin's changes."""
    for seed in cfg.account:
        try:
            store.accounts.add_account(seed.name, networks=seed.relay_networks, sender=seed.sender)
            log.info("account.seeded", account=seed.name)
        except Conflict:
            pass
        for email in seed.users:
            with suppress(Conflict):
                store.accounts.add_user(email, seed.name)


@dataclass
class Daemon:
    config: Config
    mailer: Mailer | None = None
    clock: Callable[[], float] = time.time  # injectable so tests move time instead of sleeping
    store: Store = field(init=False)
    links: dict[str, SmscLink] = field(default_factory=dict)
    servers: list[asyncio.Server] = field(default_factory=list)
    simulator: Any = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, shutdown: asyncio.Event | None = None) -> None:
        cfg = self.config
        shutdown = shutdown or self._signal_event()
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store.open(cfg.db_path, clock=self.clock, group_fsync=True)
        recovered = self.store.queue.recover_active()
        if recovered:
            log.warning(
                "queue.recovered",
                parts=recovered,
                note="possible duplicates: sent again, the SMSC may have had them already",
            )
        self.store.outbox.recover_mail()
        seed_accounts(self.store, cfg)
        if cfg.web.enabled:
            from gateway.web.server import first_operator

            if made := first_operator(self.store, cfg):
                log.warning("web.first_operator", login=made[0], password_file=str(made[1]))
        # From here on the daemon's writes are grouped and fsynced before anyone relies on them,
        # and a database locked by another process never holds the event loop.
        self.store.db.serve()

        if cfg.simulator.enabled:
            from smsc.simulator import Simulator

            self.simulator = Simulator(
                cfg.simulator, cfg.path(cfg.simulator.log), region=cfg.gateway.default_region
            )
            await self.simulator.start()
            log.info("simulator.started", smpp_port=self.simulator.smpp_port)

        outbox = OutboxWorker(
            self.store,
            self.mailer or build_mailer(cfg),
            max_attempts=cfg.mail.max_attempts,
        )
        self.store.outbox.on_queued = outbox.wake  # every commit that queued mail wakes the worker
        notifier = Notifier(self.store, cfg, outbox.wake)
        events = GatewayEvents(self.store, notifier)
        for i, link_cfg in enumerate(cfg.smsc):
            self.links[link_cfg.name] = build_link(cfg, i)
        router = Router((s.name, s.prefixes) for s in cfg.smsc)
        dispatcher = Dispatcher(
            self.store,
            {
                # The driver knows its real window (CIMD2 is stop-and-wait unless configured).
                s.name: (
                    self.links[s.name],
                    LinkPacer(self.links[s.name].stats().window, s.max_per_second, s.throttle_pause_seconds),
                )
                for s in cfg.smsc
            },
            router,
            notifier,
            clock=self.clock,
            retry_base=cfg.gateway.retry_base_seconds,
        )
        events.on_link_up = dispatcher.wake
        self.dispatcher = dispatcher
        for link in self.links.values():
            await link.start(events)

        gate = Gate(cfg, self.store, wake_dispatcher=dispatcher.wake, backlog=lambda: dispatcher.backlog)
        self.gate = gate
        host, port = cfg.smtp.listen_addr
        self.servers.append(await start_smtp_server(gate, host, port))
        self.smtp_port = self.servers[0].sockets[0].getsockname()[1]
        from gateway.smtp import submission

        sub = await submission.start(gate)
        if sub is not None:
            self.servers.append(sub)
            self.submission_port = sub.sockets[0].getsockname()[1]

        self.web = None
        if cfg.web.enabled:
            from gateway.web.server import start_web

            self.web = await start_web(cfg, self.store, gate, dispatcher, self.simulator is not None)

        supervisor = Supervisor()
        self.supervisor = supervisor
        supervisor.add("dispatcher", dispatcher.run, before_restart=lambda: self._requeue_orphans(dispatcher))
        # A relay that answers slowly is not a hang: four sends, each step with a 30 s timeout.
        supervisor.add("outbox", outbox.run, stall_after=300.0)
        housekeeping = Housekeeping(
            self.store,
            notifier,
            events,
            lambda: {"links": dispatcher.link_stats(), "workers": supervisor.snapshot()},
            cfg.state_dir / STATUS_FILE,
        )
        supervisor.add("housekeeping", housekeeping.run)
        supervised = asyncio.create_task(supervisor.run(), name="supervisor")
        log.info("daemon.ready", smtp=cfg.smtp.listen, links=list(self.links))
        sd_notify("READY=1")
        self.ready.set()
        from gateway.scheduler import start_scheduler

        scheduler = start_scheduler(self.store, cfg)  # its start-up purge runs after READY, on the loop

        def replaced() -> None:
            gate.closing = True  # before anything else: no further mail may be answered 250
            shutdown.set()

        self.store.db.on_replaced = replaced
        watch = asyncio.create_task(self._watch_file(), name="store-file-check")
        try:
            await shutdown.wait()
        finally:
            watch.cancel()
            sd_notify("STOPPING=1")
            log.info("daemon.stopping")
            gate.closing = True
            if self.web is not None:
                await self.web.stop()
            for server in self.servers:
                server.close()
            supervisor.stopping = True
            await dispatcher.stop()
            outbox.stop()
            for link in self.links.values():
                with suppress(Exception):
                    await asyncio.wait_for(link.stop(drain=True), 15)
            scheduler.shutdown(wait=False)
            supervised.cancel()
            with suppress(asyncio.CancelledError):
                await supervised
            if self.simulator is not None:
                await self.simulator.stop()
            await self.store.drain()
            self.store.close()
            log.info("daemon.stopped")
        if self.store.db.replaced is not None:
            raise StoreReplaced(
                f"database {self.store.path} was {self.store.db.replaced} while the daemon ran; "
                "stopped so that the next start opens the file now in place"
            )

    async def _watch_file(self) -> None:
        """Notice a deleted or replaced database even while no mail arrives (writes check too)."""
        while self.store.db.check_file():
            await asyncio.sleep(FILE_CHECK_SECONDS)

    async def _requeue_orphans(self, dispatcher: Dispatcher) -> None:
        """Before the dispatcher restarts: parts its crashed run claimed but never handed to a link.

        Once every submit still in flight has been answered, a part left `active` belongs to no
        one and would wait for the next daemon start; it goes back to the queue now instead.
        """
        while any(pacer.in_flight for pacer in dispatcher.pacers.values()):
            await asyncio.sleep(0.05)
        requeued = await self.store.write(self.store.queue.recover_active)
        if requeued:
            log.warning("dispatcher.requeued", parts=requeued)

    @staticmethod
    def _signal_event() -> asyncio.Event:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, event.set)
        return event
