"""Intake worker processes: the relay port's SMTP, MIME reading and acceptance on more cores.

With `[smtp] intake_processes = N` (N ≥ 1) the daemon runs the relay port (plain SMTP from the
companies' mail servers: the volume path) in N child processes (`gateway/intake_child.py`), each
with its own database connection and its own group commit (fsync before `250`) into the same WAL
database. The daemon keeps everything else: the submission port (AUTH and its lockout counters
stay in one process), the dispatcher and links, the outbox, housekeeping, web and scheduler.
N = 0 keeps the relay in the daemon's own process.

Choices, and why:
- Listening socket: bound once by the daemon (a busy port is the same `ListenError` as without
  workers) and inherited by every child (`pass_fds`); all children accept on the one socket and
  the kernel hands each connection to one of them. A busy worker is slower to call accept(),
  so the idle one takes more: load balances itself, and a dead worker's share goes to the others
  at once (with SO_REUSEPORT its connections would wait in its own queue until the restart).
- Waking: one socketpair per worker, one line per message (protocol in `intake_child`). A
  commit that queued SMS (or mail) sends `d` (`o`) once per group commit; the daemon's reader
  wakes the dispatcher (outbox) at once, without polling. The worker's high-water check uses the
  backlog the daemon sends back on every heartbeat: as fresh as the dispatcher's own count,
  which is refreshed once a second.
- Two writers on one WAL database: each group commit takes `BEGIN IMMEDIATE`; a busy lock is
  retried asynchronously as for any other process (gateway/store/commit.py), the worker waiting
  a little longer per attempt (`intake_child.WORKER_BUSY_MS`).
- Supervision: each worker is a supervised task of the daemon (gateway/supervisor.py): a worker
  that exits, or sends no heartbeat for HEARTBEAT_TIMEOUT_SECONDS (then it is killed), is logged
  and restarted with back-off. A crash loses nothing: a mail is answered `250` only once it is on
  disk, and an unanswered one is retried by its client (the Message-ID keeps a mail committed
  just before the crash from being queued twice). Stopping the daemon sends `q` to every worker
  (which answers `421`, drains and exits) and kills any still there after STOP_SECONDS; a worker
  whose daemon died (kill -9) sees its channel close and stops too. Under systemd every process
  of the unit gets SIGTERM, which a worker handles like `q`.
- Per-process state: each worker enforces the session limits (`max_connections`, per address,
  commands) on its own connections, as the daemon does on the submission port: with N workers a
  client may hold up to N times the limit (descriptors, the reason for the limit, are per process
  too). Reply counts for /metrics come with each heartbeat (a crashed worker's last second is
  lost). After-commit hooks (outbox wake-ups) go over the channel; caches that use
  `PRAGMA data_version` see other processes' writes. Logs go to the daemon's stderr (the same
  journal or file), each line with a `worker` field.
- Default 0: on a 2-core machine shared with other load, N = 1 or 2 gave no steady gain in SMS/s
  and costs ~20 % more CPU per mail (each process commits and fsyncs its own smaller batches, and
  SQLite reloads its page cache after the other process wrote); it pays where a core is idle.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import structlog

from gateway.config import Config
from gateway.supervisor import Supervisor, beat

log = structlog.get_logger(__name__)

HEARTBEAT_TIMEOUT_SECONDS = 30.0  # a worker silent for longer hangs: it is killed and restarted
STOP_SECONDS = 20.0  # at daemon stop: a worker still running after this is killed
READY_SECONDS = 30.0  # the start waits this long for the workers to serve, then goes on
LISTEN_BACKLOG = 512  # connections the kernel holds while a worker (re)starts


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port, one per address as asyncio's create_server binds them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, addr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            port = port or sock.getsockname()[1]  # port 0: every address on the one chosen
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@dataclass
class Slot:
    """One worker's place: the process running now (if any) and what it reported."""

    name: str
    proc: subprocess.Popen[bytes] | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0
    heartbeats: int = 0


class IntakeWorkers:
    """The daemon's side: spawn, feed, supervise and stop the intake worker processes."""

    def __init__(
        self,
        config: Config,
        listeners: list[socket.socket],
        *,
        wake_dispatcher: Callable[[], None],
        wake_outbox: Callable[[], None],
        backlog: Callable[[], int],
        replies: Counter[str],
        log_level: str = "INFO",
        json_logs: bool | None = None,
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.wake_dispatcher = wake_dispatcher
        self.wake_outbox = wake_outbox
        self.backlog = backlog
        self.replies = replies
        self.log_level = log_level
        self.json_logs = json_logs
        self.slots = [Slot(f"intake-{i + 1}") for i in range(config.smtp.intake_processes)]
        self.stopping = False
        self._config_bytes = pickle.dumps(config)

    def add_to(self, supervisor: Supervisor) -> None:
        for slot in self.slots:
            supervisor.add(slot.name, partial(self._run, slot), stall_after=HEARTBEAT_TIMEOUT_SECONDS * 2)

    def pids(self) -> dict[str, int | None]:
        return {s.name: s.proc.pid if s.proc and s.proc.poll() is None else None for s in self.slots}

    async def wait_ready(self) -> None:
        """Until every worker serves, or READY_SECONDS: connections wait in the kernel meanwhile."""
        try:
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in self.slots)), READY_SECONDS)
        except TimeoutError:
            waiting = [s.name for s in self.slots if not s.ready.is_set()]
            log.warning("intake.workers_not_ready", workers=waiting, note="see worker.crashed above")

    def _spawn(self, slot: Slot, child_end: socket.socket) -> subprocess.Popen[bytes]:
        fds = [s.fileno() for s in self.listeners]
        json_logs = {True: "yes", False: "no"}.get(self.json_logs, "auto")  # type: ignore[call-overload]
        command = [sys.executable, "-m", "gateway.intake_child", "--name", slot.name]
        command += [arg for fd in fds for arg in ("--listen-fd", str(fd))]
        command += ["--channel-fd", str(child_end.fileno()), "--log-level", self.log_level]
        command += ["--json-logs", json_logs]
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(*fds, child_end.fileno()))
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
        log.info("intake.worker_started", worker=slot.name, pid=proc.pid, start=slot.starts)
        reader, slot.writer = await asyncio.open_unix_connection(sock=ours)
        try:
            await self._serve(slot, reader)
        finally:
            slot.writer.close()
            slot.writer = None
            code = await self._reap(proc)
        if self.stopping:
            return
        raise RuntimeError(f"intake worker {slot.name} (pid {proc.pid}) exited with status {code}")

    async def _serve(self, slot: Slot, reader: asyncio.StreamReader) -> None:
        """Act on the worker's messages until its channel closes; kill it if it falls silent."""
        wake_dispatcher, wake_outbox = self.wake_dispatcher, self.wake_outbox
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), HEARTBEAT_TIMEOUT_SECONDS)
            except TimeoutError:
                log.error("intake.worker_silent", worker=slot.name, seconds=HEARTBEAT_TIMEOUT_SECONDS)
                assert slot.proc is not None
                slot.proc.kill()
                return
            except ConnectionError:
                # A write to a worker that was already going (its backlog answer) broke the
                # channel: the same as the channel closing.
                return
            if not line:
                return
            kind = line[:1]
            if kind == b"d":
                wake_dispatcher()
            elif kind == b"o":
                wake_outbox()
            elif kind == b"h":
                beat()
                slot.heartbeats += 1
                self.replies.update(json.loads(line[1:]))
                self._send(slot, b"b%d" % self.backlog())
            elif kind == b"R":
                beat()
                slot.ready.set()
                self._send(slot, b"b%d" % self.backlog())

    @staticmethod
    def _send(slot: Slot, line: bytes) -> None:
        if slot.writer is not None and not slot.writer.is_closing():
            slot.writer.write(line + b"\n")

    async def _reap(self, proc: subprocess.Popen[bytes]) -> int:
        """The exit status, killing the process if it outlives its channel by STOP_SECONDS."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(proc.wait), STOP_SECONDS)
        except TimeoutError:
            proc.kill()
            return await asyncio.to_thread(proc.wait)

    async def stop(self) -> None:
        """Tell every worker to stop (`421`, drain, exit); kill those still running after STOP_SECONDS."""
        self.stopping = True
        for sock in self.listeners:
            sock.close()  # ours only: the workers' copies close as they stop
        running = [s.proc for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for slot in self.slots:
            self._send(slot, b"q")
        for proc in running:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), STOP_SECONDS)
            except TimeoutError:
                log.error("intake.worker_killed", pid=proc.pid, after_seconds=STOP_SECONDS)
                proc.send_signal(signal.SIGKILL)
                await asyncio.to_thread(proc.wait)
