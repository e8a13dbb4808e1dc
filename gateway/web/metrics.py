"""`/metrics` for Prometheus and `/healthz` for load balancers.

The counters are read from the store at scrape time rather than kept in memory: a restart then
loses nothing and the numbers always agree with `smsgw status`. They are read off the event loop
(gateway/web/counts.py). A counter never falls: only final states are counters (a state a row
leaves again is a gauge), and rows that leave a final state, deleted by the retention purge or sent
again by `smsgw queue retry`, stay counted (`purged_counts`). So an SMS retried after it failed
counts under each final state it reached, and an MO whose answer mail was refused later under its
later outcome too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from billing_reports.failedjobs import KINDS, failures, unkept
from billing_reports.repo import BillingRepo
from gateway.bitelog import failure_kind
from gateway.cli.status import STORE_LOCKED, STORE_LOCKED_ADVICE
from gateway.configlinks import receipt_siblings
from gateway.linkstatus import METRICS
from gateway.routing import unserved
from gateway.statusfile import size_words
from gateway.store.admin import pinned_waiting
from gateway.store.counted import MO_UNFINISHED, RETRIED
from gateway.store.queueage import queue_oldest
from gateway.store.settling import FINAL_PART
from gateway.store.trouble import disk_space, store_locked
from gateway.web.counts import StoreCounts
from gateway.web.healthworkers import workers_health
from gateway.web.security import same

WAITING = ("queued", "deferred", "active", "hold")
# Counters only ever rise: a state a row leaves again (queued, active, …) is a gauge of its own. As
# one counter family, every drained queue read as a counter reset to Prometheus, and
# `sum(rate(smsgw_messages_total[5m]))` jumped by the queue's size each time.
# The parts a long MO was joined from: the whole they make is counted, under its outcome. Counted
# too, each 3-part SMS read as 4 received (3 `joined` and 1 `mailed`), against the panel's count.
MO_JOINED = "joined"
# The row /healthz rewrites: an empty transaction commits on a full disk too, a changed row must
# reach the WAL. `billing_state` is the store's key/value table; billing reads only its own keys.
HEARTBEAT_KEY = "healthz_heartbeat"


class Heartbeat:
    """The outcome of /healthz's write, shared by the requests of about `seconds`.

    /healthz answers without a login: a write per request let 1,400 requests a second triple the
    relay port's reply time (every write queues behind the others on the store's one writer). The
    store's recent failures (`trouble`) are still read at every request: they cost no write.

    While another process holds the database's write lock the write waits out the store's whole
    patience (5 s), and so did the answer: a monitor that gives up sooner saw the node down with no
    word. After `patience` (1 s) with the store waiting for such a lock, it answers that the
    database is locked (`smsgw status`'s words); its write goes on, and the next look shares it.
    """

    def __init__(
        self, seconds: float = 1.0, clock: Callable[[], float] = time.monotonic, patience: float = 1.0
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.patience = patience
        self._lock = asyncio.Lock()
        self._at: float | None = None
        self._failure: str | None = None  # the kind of the last write's error; None when it committed
        self._write: asyncio.Future[None] | None = None  # one not answered yet: no second beside it

    async def failure(self, store: Any) -> str | None:
        """Why the heartbeat did not commit (the error's kind), or None: one write per `seconds`,
        those asking meanwhile wait for it and share its outcome."""
        async with self._lock:
            if self._at is not None and self.clock() - self._at < self.seconds:
                return self._failure

            def heartbeat() -> None:
                BillingRepo(store.db, store.clock).put(HEARTBEAT_KEY, repr(store.clock()))

            locked = f"{STORE_LOCKED}: {STORE_LOCKED_ADVICE}"
            if self._write is None:
                self._write = write = asyncio.ensure_future(store.write(heartbeat, interactive=True))
                write.add_done_callback(_retrieved)
            write = self._write
            try:
                try:
                    await asyncio.wait_for(asyncio.shield(write), self.patience)
                except TimeoutError:
                    if not store.db.lock_waits()[0]:
                        await write  # not for another process's lock (a slow disk): its answer, as before
                self._failure = None if write.done() else locked
            except Exception as exc:
                # The kind only (SQLITE_FULL): /healthz is public, and some errors name the path. A
                # lock another process holds in `smsgw status`'s words, not its class (StoreBusy).
                self._failure = locked if store_locked(exc) else failure_kind(exc)
            if write.done():
                self._write = None
            self._at = self.clock()
            return self._failure


def _retrieved(write: asyncio.Future[None]) -> None:
    """A heartbeat answered after its request gave up on it: its error is the next look's to say."""
    if not write.cancelled():
        write.exception()


class StoreCollector(Collector):
    def __init__(
        self,
        web: Any,
        counts: StoreCounts,
        oldest_due: float | None = None,
        failed: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.web = web
        self.counts = counts
        self.oldest_due = oldest_due
        self.failed = failed or {}

    def collect(self) -> Iterator[Any]:
        counts = self.counts
        accepted = CounterMetricFamily(
            "smsgw_messages_accepted", "SMS accepted from mail", labels=["account"]
        )
        by_state = CounterMetricFamily(
            "smsgw_messages",
            "SMS by account and final state reached (a retried SMS under each it reached)",
            labels=["account", "state"],
        )
        unfinished = GaugeMetricFamily(
            "smsgw_messages_waiting", "SMS not final yet, by account and state", labels=["account", "state"]
        )
        per_account: dict[str, int] = {}
        reached: dict[tuple[str, str], int] = {}
        for account, state, n in counts.messages:
            # A retry's snapshot (`RETRIED`) counts under the state the SMS reached, not as another
            # accepted one: accepted rose with every `smsgw queue retry`.
            if not state.startswith(RETRIED):
                per_account[account] = per_account.get(account, 0) + n
            key = (account, state.removeprefix(RETRIED))
            reached[key] = reached.get(key, 0) + n
        for (account, state), n in reached.items():
            (by_state if state in FINAL_PART else unfinished).add_metric([account, state], n)
        for account, n in sorted(per_account.items()):
            accepted.add_metric([account], n)
        yield accepted
        yield by_state
        yield unfinished
        parts = CounterMetricFamily(
            "smsgw_parts", "SMS parts by link and final state", labels=["link", "state"]
        )
        parts_waiting = GaugeMetricFamily(
            "smsgw_parts_waiting", "SMS parts not final yet, by link and state", labels=["link", "state"]
        )
        depth = GaugeMetricFamily("smsgw_queue_depth", "parts waiting, by state", labels=["state"])
        waiting = dict.fromkeys(WAITING, 0)
        for link, state, n in counts.parts:
            (parts if state in FINAL_PART else parts_waiting).add_metric([link, state], n)
            if state in waiting:
                waiting[state] += n
        for state, n in waiting.items():
            depth.add_metric([state], n)
        yield parts
        yield parts_waiting
        yield depth
        now = self.web.store.clock()
        yield GaugeMetricFamily(
            "smsgw_queue_oldest_seconds",
            "how long the oldest SMS with a part due to be sent has waited since accepted (0: none due)",
            value=0.0 if self.oldest_due is None else max(0.0, now - self.oldest_due),
        )
        outbox = GaugeMetricFamily("smsgw_outbox", "mails by state", labels=["state"])
        for state, n in counts.outbox:
            outbox.add_metric([state], n)
        yield outbox
        oldest = counts.outbox_oldest
        yield GaugeMetricFamily(
            "smsgw_outbox_oldest_seconds",
            "how long the oldest mail waiting for the relay has waited (0: none waits)",
            value=0.0 if oldest is None else max(0.0, self.web.store.clock() - oldest),
        )
        mo = CounterMetricFamily(
            "smsgw_mo",
            "SMS received from phones, by outcome: a long one once, as the whole its parts were joined"
            " into (parts that came after it was handled go on as one more); one whose answer mail"
            " was refused later under both",
            labels=["outcome"],
        )
        mo_waiting = GaugeMetricFamily(
            "smsgw_mo_waiting",
            "SMS from phones not handled yet (parts of a long one: segment)",
            labels=["state"],
        )
        for state, n in counts.mo:
            if state != MO_JOINED:
                (mo_waiting if state in MO_UNFINISHED else mo).add_metric([state], n)
        yield mo
        yield mo_waiting
        up = GaugeMetricFamily("smsgw_link_up", "1 while the link is bound", labels=["link"])
        rate = GaugeMetricFamily("smsgw_link_submit_rate", "submits per second", labels=["link"])
        submitted = CounterMetricFamily("smsgw_link_submitted", "submits since start", labels=["link"])
        resent = CounterMetricFamily(
            "smsgw_link_possible_duplicates",
            "parts sent again after a submit the link's SMSC may have taken (R-7.5), since start",
            labels=["link"],
        )
        throttled = CounterMetricFamily(
            "smsgw_link_throttled",
            "submits the link's SMSC answered with throttling (ESME_RTHROTTLED), since start",
            labels=["link"],
        )
        faults = CounterMetricFamily(
            "smsgw_link_protocol_faults",
            "what the link's SMSC sent that the link could not take (bad checksums, answers to nothing,"
            " NACKs, unreadable MOs acknowledged and dropped), by kind, since start",
            labels=["link", "kind"],
        )
        for name, info in sorted(self.web.links(window=METRICS).items()):
            for kind, n in sorted((info.get("faults") or {}).items()):
                faults.add_metric([name, kind], float(n))
            up.add_metric([name], 1.0 if info.get("state") == "active" else 0.0)
            rate.add_metric([name], float(info.get("rate", 0.0)))
            submitted.add_metric([name], float(info.get("submitted", 0)))
            resent.add_metric([name], float(info.get("possible_duplicates", 0)))
            throttled.add_metric([name], float(info.get("throttled", 0)))
        yield up
        yield rate
        yield submitted
        yield resent
        yield throttled
        yield faults
        if (space := disk_space(self.web.config.state_dir).look()) is not None:
            yield GaugeMetricFamily(
                "smsgw_state_dir_free_bytes",
                "free bytes on the filesystem of state_dir (the database and its WAL grow there)",
                value=float(space["free_bytes"]),
            )
        smtp = CounterMetricFamily(
            "smsgw_smtp_replies", "SMTP replies sent since start, by code", labels=["code"]
        )
        for code, n in sorted(self.web.smtp_replies().items()):
            smtp.add_metric([code], n)
        yield smtp
        yield from self._jobs()

    def _jobs(self) -> Iterator[Any]:
        """A billing run or retention purge failing, as /healthz and `smsgw status` say it: only
        /healthz's text told of it, which an alert on metrics never reads, while the month stayed
        unbilled and the purge held every row since."""
        failing = GaugeMetricFamily(
            "smsgw_job_failing",
            "1 while the job's last run failed (billing: the month owed is not billed; purge: old rows"
            " are not deleted), until a run succeeds; `smsgw status` says why",
            labels=["job"],
        )
        since = GaugeMetricFamily(
            "smsgw_job_failing_seconds", "how long the job has been failing (0: it is not)", labels=["job"]
        )
        now = self.web.store.clock()
        for kind in KINDS:
            failure = self.failed.get(kind)
            failing.add_metric([kind], 0.0 if failure is None else 1.0)
            began = float(failure.get("since") or now) if failure is not None else now
            since.add_metric([kind], max(0.0, now - began))
        yield failing
        yield since


async def metrics(request: Request) -> Response:
    web = request.app.state.web
    token = web.config.web.metrics_token
    # The scheme's name is case-insensitive (RFC 9110 11.1): "bearer t0ken" is the same request.
    scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
    if token and not (scheme.lower() == "bearer" and same(credentials.strip(), token)):
        return PlainTextResponse("bearer token required\n", status_code=401)
    counts = await web.counts.read()  # off the loop: see gateway/web/counts.py
    now = web.store.clock()
    oldest = await web.counts.run(lambda conn: queue_oldest(conn, now))  # the same reader thread
    # One key/value row a job, and a failure the database could not keep (held in memory), as /healthz.
    failed = {**await web.counts.run(failures), **unkept(web.store)}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(web, counts, oldest, failed))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    """200 only when a write commits, no other write failed lately, the dispatcher and the intake
    processes (not all of them) neither crash-loop nor stall (`gateway.web.healthworkers`), and a
    link is bound for every route and for the parts that may leave by one link alone (premium
    answers, as `smsgw status`).

    The heartbeat is a real write, but a small one: on a full disk it may still find room in a page
    while every mail, which needs new pages, is refused with 452. So the store's recent failures
    count too (`GroupCommit.trouble`), and 503 lasts until none has failed for a while. So does the
    free space of state_dir (`gateway.store.trouble.DiskSpace`), a statvfs once a second at most."""
    web = request.app.state.web
    store = web.store
    if (failure := await web.heartbeat.failure(store)) is not None:
        return PlainTextResponse(f"store not writable: {failure}\n", status_code=503)
    if (trouble := store.db.trouble()) is not None:
        return PlainTextResponse(
            f"store failing for {trouble['for_seconds']:.0f} s: {trouble['error']}"
            f" (failed writes: {trouble['failures']}, the last {trouble['last_seconds_ago']:.0f} s ago)\n",
            status_code=503,
        )
    if (space := disk_space(web.config.state_dir).look()) is not None and space["low"]:
        # Before the disk is full: once it is, every mail gets 452 while the heartbeat may still fit.
        return PlainTextResponse(
            f"state_dir nearly full: {size_words(space['free_bytes'])} free,"
            f" under {size_words(space['floor_bytes'])}\n",
            status_code=503,
        )
    workers = workers_health(web.workers, time.monotonic())  # see gateway.web.healthworkers
    if workers.trouble is not None:
        return PlainTextResponse(f"{workers.trouble}\n", status_code=503)
    # The built-in simulator is an SMSC like any other: its link down, or a real link beside it,
    # leaves SMS waiting, and a load balancer must hear of it (it was once taken as always up).
    # No rate shown: read without moving a rate window (`gateway.linkstatus`), /metrics' above all.
    bound = {name for name, link in web.links(window=None).items() if link.get("state") == "active"}
    if not bound:
        return PlainTextResponse("no link is bound\n", status_code=503)
    pinned = None
    if {link.name for link in web.config.smsc} - bound:
        # Only with a link down: the count reads every waiting part, on the reader thread.
        pinned = await web.counts.run(pinned_waiting)
    routes = web.config.routes()
    if waiting := unserved(routes, bound.__contains__, pinned, receipt_siblings(web.config.smsc)):
        return PlainTextResponse(f"no link is bound for {', '.join(waiting)}\n", status_code=503)
    # A billing run or purge failing leaves the node serving: said after "ok", its error only in
    # `smsgw status` (this answer is public, and an OSError names paths).
    failed = {**await web.counts.run(failures), **unkept(web.store)}  # (held: the database refused it)
    jobs = "".join(f"warning: {_JOB[kind]} failing, see smsgw status\n" for kind in failed)
    return PlainTextResponse("ok\n" + workers.body() + jobs)  # a worker looping that leaves the node working


_JOB = {"billing": "billing run", "purge": "retention purge"}


ROUTES = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
