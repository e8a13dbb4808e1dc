"""The daemon's lifecycle: config → logging → store → links → SMTP servers → run → graceful stop.

Startup recovers what a crash left behind (parts and mails caught `active`) before any link or
listener starts, so that the queue is consistent when the first SMS goes out. Shutdown runs in the
reverse order: stop accepting mail (`421` to new commands), let in-flight submits be answered,
unbind, and close the database; whatever did not finish stays in the store for the next start.
The stop is triggered by an injectable event so tests drive it without signals.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway import reassembly
from gateway.config import Config
from gateway.dispatcher import Dispatcher
from gateway.events import GatewayEvents, Notifier
from gateway.mailer import Mailer, OutboxWorker, SmtpRelayMailer
from gateway.routing import Router
from gateway.smtp.relay import Gate, start_smtp_server
from gateway.store.accounts import Conflict
from gateway.store.db import Store
from smsc.base import SmscLink
from smsc.pacing import LinkPacer

log = structlog.get_logger(__name__)

STATUS_FILE = "status.json"
EXPIRY_INTERVAL = 15.0


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
            store.add_account(seed.name, networks=seed.relay_networks, sender=seed.sender)
            log.info("account.seeded", account=seed.name)
        except Conflict:
            pass
        for email in seed.users:
            with suppress(Conflict):
                store.add_user(email, seed.name)


def _sd_notify(message: str) -> None:
    """systemd's notify protocol, without a dependency: one datagram to $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    with suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(path)
        sock.sendall(message.encode())


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
        recovered = self.store.recover_active()
        if recovered:
            log.warning(
                "queue.recovered",
                parts=recovered,
                note="possible duplicates: sent again, the SMSC may have had them already",
            )
        self.store.recover_mail()
        seed_accounts(self.store, cfg)

        if cfg.simulator.enabled:
            from smsc.simulator import Simulator

            self.simulator = Simulator(cfg.simulator, cfg.path(cfg.simulator.log))
            await self.simulator.start()
            log.info("simulator.started", smpp_port=self.simulator.smpp_port)

        outbox = OutboxWorker(
            self.store,
            self.mailer or SmtpRelayMailer(cfg.mail, cfg.gateway.hostname),
            max_attempts=cfg.mail.max_attempts,
        )
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

        from gateway.scheduler import start_scheduler

        scheduler = start_scheduler(self.store, cfg)
        tasks = [
            asyncio.create_task(dispatcher.run(), name="dispatcher"),
            asyncio.create_task(outbox.run(), name="outbox"),
            asyncio.create_task(self._housekeeping(dispatcher, notifier, events), name="housekeeping"),
        ]
        log.info("daemon.ready", smtp=cfg.smtp.listen, links=list(self.links))
        _sd_notify("READY=1")
        self.ready.set()
        try:
            await shutdown.wait()
        finally:
            _sd_notify("STOPPING=1")
            log.info("daemon.stopping")
            gate.closing = True
            for server in self.servers:
                server.close()
            await dispatcher.stop()
            outbox.stop()
            for link in self.links.values():
                with suppress(Exception):
                    await asyncio.wait_for(link.stop(drain=True), 15)
            scheduler.shutdown(wait=False)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.simulator is not None:
                await self.simulator.stop()
            await self.store.drain()
            self.store.close()
            log.info("daemon.stopped")

    async def _housekeeping(self, dispatcher: Dispatcher, notifier: Notifier, events: GatewayEvents) -> None:
        """Expiry, the status file for `smsgw status`, and the systemd watchdog."""
        last_expiry = 0.0
        while True:
            now = time.time()
            if now - last_expiry >= EXPIRY_INTERVAL:
                last_expiry = now
                try:
                    with self.store.transaction():
                        notifier(self.store.expire_due())
                        for mo_id in self.store.join_stale_segments(
                            self.clock() - reassembly.TIMEOUT_SECONDS
                        ):
                            events.whole_mo(mo_id)
                except Exception:
                    log.exception("expiry.failed")
            self._write_status(dispatcher)
            _sd_notify("WATCHDOG=1")
            await asyncio.sleep(2.0)

    def _write_status(self, dispatcher: Dispatcher) -> None:
        path = self.config.state_dir / STATUS_FILE
        data = {"pid": os.getpid(), "updated_at": time.time(), "links": dispatcher.link_stats()}
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data))
            tmp.replace(path)
        except OSError:
            log.warning("status.write_failed", path=str(path))

    @staticmethod
    def _signal_event() -> asyncio.Event:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, event.set)
        return event


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
