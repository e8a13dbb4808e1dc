"""The daemon's lifecycle: config → logging → store → links → SMTP servers → run → graceful stop.

Startup recovers what a crash left behind (parts and mails caught `active`, `gateway.recovery`)
before any link or listener starts, so that the queue is consistent when the first SMS goes out.
Shutdown runs in the reverse order: stop accepting mail (`421` to new commands), let in-flight
submits be answered, unbind, and close the database; whatever did not finish stays in the store
for the next start. The stop is triggered by an injectable event so tests drive it without signals.

A database file deleted or replaced while the daemon runs stops it the same way (`StoreReplaced`,
exit status 1): systemd's restart opens a replaced file in place, and exits 3 for a deleted one until
its rescued copy is restored (`gateway.store.marker`). A listener that cannot bind raises
`ListenError` naming the config key, not asyncio's bind error (`gateway.listening`).

With `[smtp] intake_processes` ≥ 1 the relay port is served by supervised worker processes
(`gateway/intake_workers.py`); the daemon binds their listening socket and keeps the rest.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from gateway import statelock
from gateway.accountsenders import log_unanswerable
from gateway.adminrules import seed_accounts
from gateway.banner import announce_ready
from gateway.codestamp import CodeChanged
from gateway.config import Config
from gateway.configlinks import receipt_siblings
from gateway.dispatcher import Dispatcher
from gateway.events import GatewayEvents
from gateway.fdlimit import raise_fd_limit
from gateway.filemodes import STATE_DIR_MODE, planted, private_dir
from gateway.housekeeping import STATUS_FILE, Housekeeping, remove_status
from gateway.intake_workers import IntakeWorkers
from gateway.linkstatus import LinkView
from gateway.listening import open_listeners, simulator_bind_error
from gateway.mailer import Mailer, build_mailer
from gateway.nocore import no_core_dumps
from gateway.notifier import Notifier
from gateway.outboxworker import STOP_WAIT_SECONDS, OutboxWorker
from gateway.recovery import open_recovered, requeue_orphans
from gateway.relayloginstatus import login_report
from gateway.routing import Router
from gateway.sdnotify import sd_notify
from gateway.smtp.gate import Gate
from gateway.startundo import close_store, forget_failed_start, undo_start
from gateway.stoptiming import ANSWERED_SECONDS, LINK_STOP_SECONDS, STOP_BUDGET_SECONDS, StopBudget
from gateway.store.db import Store, StoreUnusable
from gateway.submissionretry import SubmissionRetry
from gateway.supervisor import Supervisor
from gateway.tlscert import with_certificate
from gateway.upgradewait import UpgradeWait
from gateway.vital import DaemonTaskLost, Vital
from smsc.base import LinkState, SmscLink
from smsc.logthrottle import flush_all
from smsc.outage import boottime
from smsc.pacing import LinkPacer

log = structlog.get_logger(__name__)

FILE_CHECK_SECONDS = 2.0  # how often an idle daemon looks whether its database file was replaced


@dataclass
class Daemon:
    config: Config
    mailer: Mailer | None = None
    config_path: Path | None = None  # named in the start banner
    clock: Callable[[], float] = time.time  # injectable so tests move time instead of sleeping
    # The time passed that tells a step of the wall clock (`Housekeeping.check_clock`): boot time. A
    # clock injected without it is its own: a test that moves it forward means time passed, not a step.
    elapsed: Callable[[], float] | None = None
    store: Store = field(init=False)
    links: dict[str, SmscLink] = field(default_factory=dict)
    servers: list[asyncio.Server] = field(default_factory=list)
    simulator: Any = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    log_level: str = "INFO"  # passed on to intake worker processes
    json_logs: bool | None = None
    intake: IntakeWorkers | None = None
    code_changed: bool = False  # an intake worker found the code on disk is not ours (`CodeChanged`)
    stop_budget: float = STOP_BUDGET_SECONDS  # every bounded wait of the stop, in all (`gateway.stoptiming`)

    async def run(self, shutdown: asyncio.Event | None = None) -> None:
        no_core_dumps()  # the config in memory holds every secret; the intake workers inherit it too
        if (few := raise_fd_limit(self.config.smtp.max_connections)) is not None:  # before any session
            log.warning("config.fd_limit", detail=few)
        # 0750 when made, others' access narrowed: its files are 0600 each, and a group may need to
        # reach the default billing_dir inside it (the unit's StateDirectoryMode is 0750 too).
        was = private_dir(self.config.state_dir, STATE_DIR_MODE)
        if (found := planted(self.config.state_dir, was)) is not None:
            raise StoreUnusable(found)  # exit 3: an admin looks before anything secret is written there
        # A command upgrading the database holds the lock meanwhile: waited for, the schema then current.
        wait = UpgradeWait(self.config.db_path, self.config.state_dir)
        with statelock.held(self.config.state_dir, wait=statelock.UPGRADE_WAIT_SECONDS, waiter=wait):
            await forget_failed_start(self._run(shutdown or self._signal_event()), self.config.state_dir)

    async def _run(self, shutdown: asyncio.Event) -> None:
        cfg = self.config
        # Before anything holds the config: the listeners see the resolved certificate paths.
        self.config, sub_why_off, made = with_certificate(cfg)
        cfg = self.config
        if made:
            log.warning(
                "tls.selfsigned_created",
                cert=str(cfg.smtp.tls_cert_file),
                note="mail clients will ask to trust it; for a real one set [smtp] tls_cert_file and"
                " tls_key_file",
            )
        zone = ZoneInfo(cfg.gateway.timezone)
        for link_cfg in cfg.smsc:  # a link's config error (its password file) before the store opens
            self.links[link_cfg.name] = link_cfg.driver(cfg.base_dir)
        self.store = open_recovered(cfg, self.clock, zone)
        self.store.queue.siblings = receipt_siblings(cfg.smsc)
        self.store.queue.link_names = {link.name: link.type for link in cfg.smsc}
        seed_accounts(self.store, cfg)
        log_unanswerable(self.store, cfg)  # of the accounts stored, once: the seeded blocks among them
        if cfg.web.enabled:
            from gateway.web.server import first_operator

            if made := first_operator(self.store, cfg):
                log.warning("web.first_operator", login=made[0], written_to=str(made[1]))
        # From here on the daemon's writes are grouped and fsynced before anyone relies on them,
        # and a database locked by another process never holds the event loop.
        self.store.db.serve()

        if cfg.simulator.enabled:
            from smsc.simulator import Simulator

            self.simulator = Simulator(
                cfg.simulator,
                cfg.path(cfg.simulator.log),
                region=cfg.gateway.default_region,
                base_dir=cfg.base_dir,  # its tls_* files beside the config, as check-config reads them
            )
            try:
                await self.simulator.start()  # it logs sim.started with its ports
            except OSError as exc:
                await close_store(self.store)
                raise simulator_bind_error(self.simulator, exc) from exc

        for link in self.links.values():  # a part's relative validity counts on the expiries' clock
            if hasattr(link, "clock"):
                link.clock = self.clock
        mailer = self.mailer or build_mailer(cfg)
        outbox = OutboxWorker(self.store, mailer, max_attempts=cfg.mail.max_attempts)
        self.store.outbox.on_queued = outbox.wake  # every commit that queued mail wakes the worker
        notifier = Notifier(self.store, cfg, outbox.wake)
        events = GatewayEvents(self.store, notifier)
        router = Router(cfg.routes())
        dispatcher = Dispatcher(
            self.store,
            {
                # The driver knows its real window (CIMD2 is stop-and-wait unless configured).
                s.name: (
                    self.links[s.name],
                    LinkPacer(
                        self.links[s.name].stats().dispatch_places, s.max_per_second, s.throttle_pause_seconds
                    ),
                )
                for s in cfg.smsc
            },
            router,
            notifier,
            clock=self.clock,
            retry_base=cfg.gateway.retry_base_seconds,
            queue_high_water=cfg.gateway.queue_high_water,
        )
        events.on_link_up = dispatcher.link_up
        events.on_optout = dispatcher.opted_out
        self.dispatcher = dispatcher
        status_path = cfg.state_dir / STATUS_FILE
        links = LinkView(dispatcher)
        housekeeping = Housekeeping(
            self.store,
            notifier,
            events,
            lambda: {  # read once the workers run: everything it names is bound by then
                "links": links(),
                "workers": supervisor.snapshot(),
                "queued": dispatcher.backlog,
                "outbox": self.store.admin.outbox_waiting()[0],
                "auth_locks": gate.auth.locks(),  # for `smsgw auth list`
                "relay_login": login_report(mailer),  # a refusal held: `smsgw status` says it
                "intake_pids": self.intake.pids() if self.intake else {},
                "store": self.store.db.trouble(),  # writes failing lately: `smsgw status` says so
                "submission_off": submission.why_off,  # configured, not listening: status says why
                "relay_starttls_off": submission.relay_starttls_off,  # bound late, intake processes
                # What it runs with: `smsgw status` judges the routes by these, not by a file edited since.
                # [smtp] listen too: `smsgw send` reaches the daemon where it listens, not where the
                # edited file says it will after a restart.
                "config": {"digest": cfg.digest, "routes": cfg.routes(), "smtp_listen": cfg.smtp.listen_addr},
            },
            status_path,
            elapsed=self.elapsed or (boottime if self.clock is time.time else self.clock),
            reassembly_timeout=cfg.replies.reassembly_timeout_seconds,
            links_up=lambda: (
                not dispatcher.links
                or any(link.state == LinkState.ACTIVE for link in dispatcher.links.values())
            ),
        )
        housekeeping.steps.moved = dispatcher.validities_moved  # a clock step moved them in the store
        housekeeping.steps.back = dispatcher.handoffs.stepped_back  # and the hand-off times it holds
        dispatcher.handoffs.elapsed = housekeeping.elapsed  # read beside them: which side of a step
        dispatcher.step_unseen = housekeeping.steps.ahead  # none expires on a step not yet handled
        self.housekeeping = housekeeping
        if housekeeping.steps.last is not None:  # seeded from the kept reading: a step may wait
            # Before anything can write (mail, the panel, the links): a step made while the daemon
            # was stopped moves only rows stamped before it. Failed (the store locked by another
            # process), the worker's looks try again, and its rows are still told by their ids. A step
            # back's chunks are left to the worker's looks, after the listeners open (`check_clock`).
            try:
                await housekeeping.check_clock(start=True)
            except Exception as exc:
                log.warning("clock.first_look_failed", error=str(exc))
        # Listeners before links: a port that cannot be bound stops the start before any SMSC
        # session exists, and what was opened so far is closed again so that the process exits.
        try:
            gate = Gate(cfg, self.store, wake_dispatcher=dispatcher.wake, backlog=lambda: dispatcher.queue)
            self.gate = gate
            await open_listeners(self, gate, dispatcher, sub_why_off)
        except BaseException:
            await undo_start(self)  # the start's queued writes committed before the store closes
            raise

        self.supervisor = supervisor = Supervisor()
        if self.web is not None:  # /healthz judges the workers as `smsgw status` does
            self.web.web.workers = supervisor.workers
        supervisor.add(
            "dispatcher", dispatcher.run, before_restart=lambda: requeue_orphans(self.store, dispatcher)
        )
        # A relay that answers slowly is not a hang: each step of a send has 30 s, the answer to the final
        # dot 10 minutes (RFC 5321), and with every slot waiting the worker beats when a send ends.
        # A crash of the worker (a store error recording a send) leaves mail `active`: back to the queue
        # before it runs again, or it would wait for the next daemon start.
        supervisor.add(
            "outbox",
            outbox.run,
            before_restart=lambda: self.store.write(self.store.outbox.recover_mail),
            stall_after=outbox.stall_after,
        )
        # A submission port configured but off (its certificate's lock held at the start) is tried
        # again while the daemon runs, and said meanwhile (status, /healthz): `gateway.submissionretry`.
        self.submission = submission = SubmissionRetry(self, gate, sub_why_off)
        submission.supervise(supervisor)
        supervisor.add("housekeeping", housekeeping.run)

        def stop_now() -> None:
            gate.closing = True  # before anything else: no further mail may be answered 250
            # A worker that ends because of what stops the daemon (an intake worker on changed code)
            # returns before the stop below runs: its supervisor then logged the stop as its crash.
            supervisor.stopping = True
            shutdown.set()

        def code_changed() -> None:
            self.code_changed = True
            stop_now()

        if self.intake is not None:
            # Before the workers start: one that finds other code on disk at its first start used to
            # return to a no-op, and was restarted again and again while the start waited for it.
            self.intake.on_code_changed = code_changed
            self.intake.add_to(supervisor)
        supervised: asyncio.Task[None] | None = None
        vital = Vital(stop_now, shutdown.is_set)
        if self.web is not None and self.web.task is not None:
            vital.watch(self.web.task)  # its end left /healthz and /metrics silent, status saying healthy
        scheduler: Any = None
        watch: asyncio.Task[None] | None = None
        # From the ports bound on, every way out is the orderly stop: a start cancelled while it waits
        # for the workers (or failing) left the ports listening, the workers running, the store open.
        try:
            for link in self.links.values():
                await link.start(events)
            supervised = vital.watch(asyncio.create_task(supervisor.run(), name="supervisor"))
            if self.intake is not None:
                await self.intake.wait_ready(shutdown)
            if not shutdown.is_set():  # stopped while the workers got ready: no "ready" before STOPPING
                announce_ready(self, sub_why_off)
                sd_notify("READY=1")
            self.ready.set()
            from gateway.scheduler import start_scheduler

            scheduler = start_scheduler(self.store, cfg)  # its start-up purge runs after READY, on the loop

            self.store.db.on_replaced = stop_now
            if self.store.db.replaced is not None:  # it happened during the start (a failed fsync)
                stop_now()

            watch = vital.watch(asyncio.create_task(self._watch_file(), name="store-file-check"))
            await shutdown.wait()
        finally:
            if watch is not None:
                watch.cancel()
            sd_notify("STOPPING=1")
            log.info("daemon.stopping")
            budget = StopBudget(self.stop_budget)
            stop_now()  # a failed start's stop is meant too: the panel's end then is no task lost
            # Before the first await: a worker that got systemd's SIGTERM too exits as asked, and its
            # end must find both flags set (not be logged as a crash and restarted): the supervisor's
            # is set by stop_now.
            if self.intake is not None:
                self.intake.stopping = True
            # The panel's stop waits up to 10 s for a request under way: meanwhile the mail ports,
            # closed after it, went on answering 250 (F10: stop accepting at once).
            web_stopped = asyncio.create_task(self.web.stop(), name="web-stop") if self.web else None
            for server in self.servers:
                server.close()
            # The workers end beside the dispatcher's stop, as the relay port's sessions in this process
            # (N = 0) are answered beside it: each waits for its own peers (mail clients, the SMSCs), and
            # one after the other, with a stalled disk, their bounds passed systemd's TimeoutStopSec.
            intake_stopped = None
            if self.intake is not None:  # `q` to the workers now; their end is waited for below
                intake_stopped = asyncio.create_task(self.intake.stop(budget), name="intake-stop")
            answers = max((s.response_timeout_seconds for s in cfg.smsc), default=9.0)
            # Submits on the wire: their answers settle them.
            await dispatcher.stop(timeout=budget.left("dispatcher", 1.0 + answers))
            # Mail on its way to the relay is answered and recorded before the worker is cancelled (a
            # send cut off is sent again by the next start), while the links unbind, all at once.
            wait = budget.left("outbox", STOP_WAIT_SECONDS)
            outbox_stopped = asyncio.create_task(outbox.stop(wait), name="outbox-stop")
            await asyncio.gather(*(_stop_link(name, link, budget) for name, link in self.links.items()))
            await dispatcher.end_late_answers(lambda: budget.left("late answers", 2.0))  # asked if one waits
            await outbox_stopped
            if intake_stopped is not None:
                await intake_stopped
            if web_stopped is not None:
                await web_stopped
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if supervised is not None:
                await vital.end(supervised)
            await outbox.close()  # the relay hears QUIT on the sessions kept for the next mail
            if self.simulator is not None:
                await self.simulator.stop()
            try:  # the workers ended: kept now, the next start places no row of this run by its time
                await housekeeping.check_clock(keep=True)
            except Exception as exc:
                log.warning("clock.last_look_failed", error=str(exc))
            await self.store.drain()
            # The drain may end on the loop turn its fsync's answer comes, before the mail's handler
            # has written its 250: that session waits for it, not a 421 for a mail committed.
            await gate.sessions.answered(ANSWERED_SECONDS)
            if closed := gate.sessions.close_all():  # every answer is out: the idle ones hear 421
                log.info("smtp.sessions_closed", sessions=closed)
            self.store.close()
            remove_status(status_path)  # after the last write of it: `status` says "not running" now
            flush_all()
            log.info("daemon.stopped")
        if self.store.db.replaced is not None:
            raise self.store.db.replaced_error()
        if vital.lost is not None:
            raise DaemonTaskLost(f"{vital.lost}; stopped, to be started again")
        if self.code_changed:
            raise CodeChanged("the code on disk changed since the start (an upgrade): start again on it")

    async def _watch_file(self) -> None:
        """Notice a deleted or replaced database even while no mail arrives (writes check too)."""
        while self.store.db.check_file():
            await asyncio.sleep(FILE_CHECK_SECONDS)

    @staticmethod
    def _signal_event() -> asyncio.Event:
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, event.set)
        # SIGHUP's default ends the process at once (no 421, no wait for the links), and systemd
        # takes that end for a clean one and does not restart it: a habit (`kill -HUP` to reload,
        # logrotate) would silently stop the gateway. There is nothing to reload (logs go to
        # stdout; a changed config needs a restart), so it is logged and otherwise ignored.
        loop.add_signal_handler(signal.SIGHUP, _sighup)
        return event


async def _stop_link(name: str, link: SmscLink, budget: StopBudget) -> None:
    """One link's unbind at stop; its failure is logged and the stop goes on with the rest. It was
    suppressed unsaid: a link whose task had died (and so never said "stopped") left no word at all."""
    wait = budget.left(f"link {name}", LINK_STOP_SECONDS)
    try:
        await asyncio.wait_for(link.stop(drain=True), wait)
    except TimeoutError:
        log.warning("daemon.link_stop_timeout", link=name, seconds=round(wait, 1))
    except Exception:
        log.exception("daemon.link_stop_failed", link=name)


def _sighup() -> None:
    log.warning(
        "daemon.sighup_ignored", note="nothing to reload: restart the daemon to apply a changed config"
    )
