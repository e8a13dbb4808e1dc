"""Intake worker processes: the relay port's SMTP, MIME reading and acceptance on more cores.

With `[smtp] intake_processes = N` (N ≥ 1) the daemon runs the relay port (plain SMTP from the
companies' mail servers: the volume path) in N child processes (`gateway/intake_child.py`): the
SMTP sessions, MIME reading and composing of the rows. The daemon keeps every write (each
worker's acceptances run in the daemon's group commit: one writer on the database), the
submission port (AUTH and its lockout counters stay in one process), the dispatcher and links,
the outbox, housekeeping, web and scheduler. N = 0 keeps the relay in the daemon's own process.

Choices, and why:
- Listening socket: bound once by the daemon (a busy port is the same `ListenError` as without
  workers) and inherited by every child (`pass_fds`); all children accept on the one socket, ONE
  connection per wake-up (`gateway/smtp/fairaccept.py`), and begin when the daemon sends `g`: when
  all are ready, 2 s after the first, or at once beside workers already accepting. asyncio's server
  accepts 100 per wake-up (uvloop all): after a restart the first worker took every reconnect
  waiting, and mail servers keep their connections (10,565 mails against 12). A dead worker's
  share goes to the others at once (with SO_REUSEPORT it would wait in its own queue).
- Writes: one socketpair per worker carries framed messages (`gateway/intake_channel.py`). A
  session's write (acceptance, info@ answer, premium answer) goes with its arguments and a request
  id; the daemon runs it as its own relay port would (same group commit, fsync before it answers)
  and sends back the result or the store error, which the worker raises: the same SMTP reply. Two
  writers on one WAL file cost more CPU than one (lock retries, page rereads, smaller batches). The
  daemon's commit wakes its dispatcher and outbox directly. The worker's high-water check uses the
  backlog sent with each heartbeat and, after each new count (once a second), before its next answer.
- Supervision: each worker is a supervised task of the daemon (gateway/supervisor.py): a worker that
  exits, or sends no heartbeat for HEARTBEAT_TIMEOUT_SECONDS (READY_SECONDS while it starts; then it
  is killed), is logged and restarted with back-off; while none serves after a failed start, the
  daemon answers the port `421` itself (`gateway.intake_refusal`). A crash loses nothing: `250`
  comes only once a mail is on disk, an unanswered one is retried (its Message-ID keeps a mail
  committed just before the crash from being queued twice). Stopping the daemon sends `q` to every
  worker (`421`, drain, exit) and kills any still there after WORKER_STOP_SECONDS; a worker whose
  daemon died (kill -9) sees its channel close and stops too. Under systemd every process of the
  unit gets SIGTERM, which a worker handles like `q` after telling the daemon (`S`): its end then
  waits SIGNAL_GRACE_SECONDS for the daemon's own stop, and only without one is it a worker stopped
  alone, logged and restarted. SIGINT (Ctrl-C: the terminal's whole process group) the worker
  ignores: the daemon stops it with `q` in its own order (one that stopped at once beside it got 6
  of 629 sessions in flight reset, not told `421`).
- STARTTLS: an SSL context cannot be handed to another process, so each worker loads the relay
  port's certificate itself (`gateway.smtp.servers.relay_tls_context`, the same code as in one
  process); the daemon loads it once first: a file no worker could use stops the start. A worker
  restarted after the file became unusable serves without STARTTLS (`smtp.relay_tls_unusable`).
- Per-process state: each worker enforces the session limits (`max_connections`, per address,
  commands) on its own connections: with N workers a client may hold N times the limit. Reply
  counts for /metrics come with each heartbeat. Caches that use `PRAGMA data_version` see the
  daemon's writes. Logs go to the daemon's stderr, each line with a `worker` field.
- Default 0: one worker on 2 cores moves ~0.6 ms per mail off the daemon's loop (15-20 % more SMS/s
  than N = 0, pipelining) but costs ~10 % more CPU in all; it pays only where a core is idle.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from gateway.bitelog import FaultLog
from gateway.codestamp import CODE_CHANGED, code_stamp
from gateway.config import Config, ConfigError
from gateway.hangup import hup_ignored
from gateway.intake_accepts import Accepts, Withdrawn
from gateway.intake_channel import REQUEST_ID, Framed, error_to_wire, pack_request, unpack_request
from gateway.intake_listeners import bind_listeners, reap, signal_name
from gateway.intake_refusal import NoWorkerRefusal
from gateway.queuedepth import Backlog
from gateway.smtp.accept import Writes
from gateway.smtp.fairaccept import Release
from gateway.smtp.servers import relay_tls_context
from gateway.stoptiming import SIGNAL_GRACE_SECONDS, WORKER_STOP_SECONDS, StopBudget
from gateway.store.db import StoreBusy, StoreReplaced
from gateway.supervisor import ProcessEnded, Supervisor, beat

log = structlog.get_logger(__name__)

__all__ = ["IntakeWorkers", "Slot", "bind_listeners"]

_CODE_ROOT = str(Path(__file__).resolve().parents[1])  # where this process's `gateway` was found

HEARTBEAT_TIMEOUT_SECONDS = 30.0  # a worker silent for longer hangs: it is killed and restarted
READY_SECONDS = 30.0  # the start waits this long for the workers to serve, then goes on
_WRITE, _HEARTBEAT, _READY, _SIGNALLED, _WITHDRAW = b"w"[0], b"h"[0], b"R"[0], b"S"[0], b"x"[0]
# Store errors the worker's SMTP handler answers itself (451, 452, 421); anything else is a bug.
_STORE_ERRORS = (StoreBusy, StoreReplaced, sqlite3.OperationalError, OSError)


@dataclass(slots=True)
class _Result:
    """A write's result, told apart from an exception a write may return as its value."""

    value: Any


@dataclass
class Slot:
    """One worker's place: the process running now (if any) and what it reported."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    channel: Framed | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0
    heartbeats: int = 0
    signalled: bool = False  # the running process was sent SIGTERM (it ignores SIGINT: the daemon's)
    serving: bool = False  # the running process said `R`
    failed: bool = False  # the last run ended before its `R`: while none serves, the port says 421
    told: Backlog | None = None  # the backlog last sent to it


class IntakeWorkers:
    """The daemon's side: spawn, feed, supervise and stop the intake worker processes."""

    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket],
        *,
        writes: Writes,
        backlog: Callable[[], Backlog],
        replies: Counter[str],
        log_level: str = "INFO",
        json_logs: bool | None = None,
    ) -> None:
        # The workers load the relay port's certificate themselves: one they could not use is refused here.
        try:
            relay_tls_context(config)
        except ConfigError:
            for sock in listeners:  # handed to us to own (`stop` closes them); nothing else will
                sock.close()
            raise
        self.config = config
        self.listeners = listeners
        self.writes = writes
        self.backlog = backlog
        self.replies = replies
        self.log_level = log_level
        self.json_logs = json_logs
        self.slots = [Slot(f"intake-{i + 1}") for i in range(config.smtp.intake_processes)]
        self.release = Release(len(self.slots))  # when each worker begins to accept (`g`)
        self.refusal = NoWorkerRefusal(listeners, config.gateway.hostname, self.slots)
        self.stopping = False
        # The code on disk is no longer the daemon's (an upgrade): the daemon stops.
        self.on_code_changed: Callable[[], None] = lambda: None
        # A write failing for a reason not the store's (a bug a mail can trigger again and again):
        # one line a second per kind, the traceback on the first.
        self._faults = FaultLog(log)
        self._writing: set[asyncio.Future[Any]] = set()  # workers' writes being committed
        self._config_bytes = pickle.dumps(config)

    def add_to(self, supervisor: Supervisor) -> None:
        for slot in self.slots:
            run = partial(self.refusal.run, slot, partial(self._run, slot))
            worker = supervisor.add(slot.name, run, stall_after=HEARTBEAT_TIMEOUT_SECONDS * 2)
            worker.serving = partial(getattr, slot, "serving")  # /healthz: what takes the port's mail

    def pids(self) -> dict[str, int | None]:
        return {s.name: s.proc.pid if s.proc and s.proc.poll() is None else None for s in self.slots}

    async def wait_ready(self, stop: asyncio.Event | None = None) -> None:
        """Until every worker serves, the daemon stops (a worker found other code on disk), or
        READY_SECONDS: connections wait in the kernel meanwhile."""
        ready = asyncio.ensure_future(asyncio.gather(*(s.ready.wait() for s in self.slots)))
        waits = {ready, asyncio.ensure_future((stop or asyncio.Event()).wait())}
        try:
            done, _ = await asyncio.wait(waits, timeout=READY_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)  # read: unread, one is "never retrieved"
        if not done:
            waiting = [s.name for s in self.slots if not s.ready.is_set()]
            log.warning("intake.workers_not_ready", workers=waiting, note="see worker.crashed above")

    def _spawn(self, slot: Slot, child_end: socket.socket) -> subprocess.Popen[bytes]:
        fds = [s.fileno() for s in self.listeners]
        json_logs = {True: "yes", False: "no"}.get(self.json_logs, "auto")  # type: ignore[call-overload]
        # The daemon's own packages, not whatever `gateway` the working directory holds: `-m` put
        # it first on the worker's path, and a daemon started by its script from a directory with
        # another checkout (or a planted gateway/) ran its relay port on that code.
        command = [sys.executable, "-P", "-m", "gateway.intake_child", "--name", slot.name]
        command += [arg for fd in fds for arg in ("--listen-fd", str(fd))]
        command += ["--channel-fd", str(child_end.fileno()), "--log-level", self.log_level]
        command += ["--json-logs", json_logs, "--code-stamp", code_stamp()]
        path = os.pathsep.join(filter(None, (_CODE_ROOT, os.environ.get("PYTHONPATH"))))
        with hup_ignored():
            proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                pass_fds=(*fds, child_end.fileno()),
                env={**os.environ, "PYTHONPATH": path},
            )
        assert proc.stdin is not None
        proc.stdin.write(self._config_bytes)  # a few kB: fits the pipe, never blocks
        proc.stdin.close()
        return proc

    async def _run(self, slot: Slot) -> None:
        """One run of one worker process; returns or raises when it ends (the supervisor restarts it)."""
        ours, theirs = socket.socketpair()
        try:
            proc = slot.proc = self._spawn(slot, theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        slot.starts += 1
        slot.signalled = False
        log.info("intake.worker_started", worker=slot.name, pid=proc.pid, start=slot.starts)
        try:
            await self._serve(slot, ours)
        finally:
            code = await reap(proc, WORKER_STOP_SECONDS)
        if slot.signalled:
            loop = asyncio.get_running_loop()
            until = loop.time() + SIGNAL_GRACE_SECONDS
            while not self.stopping and loop.time() < until:
                await asyncio.sleep(0.05)
        if self.stopping:
            return
        if code == CODE_CHANGED:  # logged by the worker; restarting it would only repeat that
            log.error("intake.code_changed", worker=slot.name, action="the daemon stops, to start on it")
            self.on_code_changed()
            return
        if slot.signalled:
            raise ProcessEnded("stopped by a signal alone", pid=proc.pid, signal="SIGTERM")
        if code < 0:
            raise ProcessEnded(f"killed by {signal_name(-code)}", pid=proc.pid, signal=signal_name(-code))
        raise ProcessEnded(f"exited with status {code}", pid=proc.pid, status=code)

    async def _serve(self, slot: Slot, sock: socket.socket) -> None:
        """Act on the worker's messages until its channel closes; kill it if it falls silent."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        serving: asyncio.Future[None] = loop.create_future()  # its `R`: till then, READY_SECONDS
        accepts = Accepts(self.writes)  # this process's acceptances not yet answered

        def on_frame(kind: int, payload: bytes) -> None:
            nonlocal heard
            heard = loop.time()
            if kind == _WRITE:
                request_id, (name, args) = unpack_request(payload)
                if name == "accept":
                    self._accept(slot, channel, request_id, args, accepts)
                    return
                task = loop.create_task(self._write(slot, channel, request_id, name, args))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)
            elif kind == _HEARTBEAT:
                beat()
                slot.heartbeats += 1
                self.replies.update(json.loads(payload))
                self._backlog_to(slot, channel)
            elif kind == _READY:
                beat()
                slot.ready.set()
                slot.serving = True
                self.refusal.update()
                if not serving.done():
                    serving.set_result(None)
                self._backlog_to(slot, channel)
                self.release.ready(slot.name, partial(channel.send, b"g"))
            elif kind == _SIGNALLED:
                slot.signalled = True
            elif kind == _WITHDRAW:
                self._withdraw(slot, channel, payload, accepts)

        channel = Framed(on_frame)
        try:
            await channel.open(sock)
        except BaseException:
            sock.close()
            raise
        slot.channel = channel
        try:
            while not channel.closed.done():
                looked = loop.time()
                bound = HEARTBEAT_TIMEOUT_SECONDS if serving.done() else READY_SECONDS
                left = heard + bound - looked
                if left <= 0:
                    log.error("intake.worker_silent", worker=slot.name, seconds=bound, serving=serving.done())
                    if slot.proc is not None:
                        slot.proc.kill()
                    return
                waits = [channel.closed, *([] if serving.done() else [serving])]
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                late = loop.time() - looked - left
                if late > HEARTBEAT_TIMEOUT_SECONDS / 6:
                    # The daemon's own loop stood still (stopped, a paused VM, swapping): the worker's
                    # heartbeats wait unread in the socket. Killed for the daemon's silence, it took
                    # every session in progress with it.
                    log.warning("intake.daemon_stalled", worker=slot.name, late_seconds=round(late, 1))
                    heard = loop.time()
        finally:
            slot.channel = None
            self.release.gone(slot.name)
            channel.close()

    def _accept(
        self, slot: Slot, channel: Framed, request_id: int, args: tuple[Any, ...], accepts: Accepts
    ) -> None:
        """The common write without a task of its own: it joins the next group commit at once and is
        answered from its future's callback (a task would wait a loop turn to start, and another
        to resume; on a busy loop each turn is latency for the client waiting for its `250`).
        The worker may withdraw it until it runs (`gateway.intake_accepts`)."""
        try:
            fut = accepts.submit(request_id, args)
        except Exception as exc:
            self._answer(slot, channel, request_id, "accept", exc)
            return
        self._writing.add(fut)

        def done(fut: asyncio.Future[Any]) -> None:
            self._writing.discard(fut)
            if fut.cancelled():
                self._answer(slot, channel, request_id, "accept", RuntimeError("cancelled"))
            elif not isinstance(fut.exception(), Withdrawn):  # a withdrawn one was answered then
                self._answer(slot, channel, request_id, "accept", fut.exception() or _Result(fut.result()))

        fut.add_done_callback(done)

    def _withdraw(self, slot: Slot, channel: Framed, payload: bytes, accepts: Accepts) -> None:
        """The worker asks for a write back (it waited past its bound): granted (`x`: its client hears
        `451`) for an acceptance that has not run; else its answer, when it comes, is the only one."""
        (request_id,) = REQUEST_ID.unpack(payload)
        if accepts.withdraw(request_id):
            log.warning("intake.accept_withdrawn", worker=slot.name, request=request_id)
            channel.send(b"x", payload)
        else:
            log.info("intake.withdraw_late", worker=slot.name, request=request_id)

    async def _write(
        self, slot: Slot, channel: Framed, request_id: int, name: str, args: tuple[object, ...]
    ) -> None:
        """Run one of the worker's other writes here and answer it."""
        try:
            if name not in Writes.NAMES:
                raise ValueError(f"no write named {name!r}")
            outcome: Exception | _Result = _Result(await getattr(self.writes, name)(*args))
        except Exception as exc:
            outcome = exc
        self._answer(slot, channel, request_id, name, outcome)

    def _backlog_to(self, slot: Slot, channel: Framed, *, if_new: bool = False) -> None:
        """The backlog, by which a worker judges the high-water mark: with its heartbeats, and a new count
        before the next answer, which its client's next mail follows (by heartbeats, a second late)."""
        backlog = self.backlog()
        if not if_new or backlog is not slot.told:  # each count is a new object: one frame a count
            slot.told = backlog
            channel.send(b"b", backlog.wire())

    def _answer(
        self, slot: Slot, channel: Framed, request_id: int, name: str, outcome: BaseException | _Result
    ) -> None:
        """Send a write's result or error back; a worker gone meanwhile is logged and let be."""
        self._backlog_to(slot, channel, if_new=True)
        if isinstance(outcome, _Result):
            answer: tuple[bool, object] = (True, outcome.value)  # Writes woke the dispatcher if SMS queued
        else:
            if not isinstance(outcome, _STORE_ERRORS):
                self._faults.error(
                    "intake.write_failed", outcome, traceback=True, worker=slot.name, write=name
                )
            answer = (False, error_to_wire(outcome))
        if not channel.send(b"a", pack_request(request_id, answer)):
            # Its client never heard 250 and sends the mail again: the Message-ID (dedup) keeps
            # a committed acceptance from becoming a second SMS.
            log.warning("intake.answer_dropped", worker=slot.name, write=name, committed=answer[0])

    def stop(self, budget: StopBudget | None = None) -> Coroutine[Any, Any, None]:
        """`q` to every worker (`421`, drain, exit) now, as the daemon's ports close; returned: the wait."""
        self.stopping = True
        self.refusal.close()
        for sock in self.listeners:
            sock.close()  # ours only: the workers' copies close as they stop
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for channel in filter(None, (slot.channel for slot in self.slots)):
            channel.send(b"q")
        return self._stopped(running, budget or StopBudget())

    async def _stopped(self, running: list[subprocess.Popen[bytes]], budget: StopBudget) -> None:
        within = budget.left("intake workers", WORKER_STOP_SECONDS)
        await asyncio.gather(*(reap(proc, within) for proc in running))  # together: one bound for all
        # Their writes sent before they went, committed (or failed) before the store closes: bounded too.
        if self._writing:
            within = budget.left("intake workers' writes", WORKER_STOP_SECONDS)
            _done, stuck = await asyncio.wait(list(self._writing), timeout=within)
            if stuck:
                log.error("intake.writes_unfinished", writes=len(stuck))
