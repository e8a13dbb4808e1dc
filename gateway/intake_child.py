"""One intake worker process: the relay port's SMTP sessions, MIME reading and acceptance.

Started by the daemon (`gateway/intake_workers.py`, which explains the design) as
`python -m gateway.intake_child --listen-fd N [--listen-fd M] --channel-fd C --name intake-1`
with the pickled `Config` on stdin. It opens its own connection to the daemon's database and
commits with its own group commit (fsync before `250`, as in the daemon); it never recovers,
migrates or seeds anything, which the daemon did before starting it.

The channel to the daemon carries one line per message:
worker → daemon: `R` serving; `d` SMS queued (wake the dispatcher); `o` mail queued (wake the
outbox); `h{json}` heartbeat, once a second, with the reply codes counted since the last one.
daemon → worker: `b<n>` the queue backlog (the high-water check); `q` stop.
Wake-ups are coalesced to one write per loop turn, which is one group commit.

Stopping (`q`, SIGTERM, SIGINT, or the channel closing because the daemon died): new commands
get `421`, the listener closes, mails whose DATA is being accepted are answered, the store is
drained and closed, and the process exits 0. No orphan outlives a daemon killed with -9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config import Config
from gateway.smtp.relay import Gate, RelayHandler, start_smtp_server
from gateway.store.db import Store

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 1.0
# A worker's BEGIN IMMEDIATE waits a little longer than the daemon's (5 ms) before retrying
# asynchronously: the daemon's transactions are short, and an accept that takes the lock on the
# first try spares the client the retry pause.
WORKER_BUSY_MS = 10
DRAIN_SECONDS = 10.0  # at stop: how long mails being accepted get to be answered


class Channel:
    """The worker's end of the socketpair: coalesced wake-ups out, backlog and stop in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backlog = 0
        self.stop = asyncio.Event()
        self._out: set[bytes] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self.sock)

    def send(self, line: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(line + b"\n")

    def _later(self, flag: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.add(flag)

    def _flush(self) -> None:
        out, self._out = self._out, set()
        self.send(b"\n".join(sorted(out)))

    def dispatch(self) -> None:
        self._later(b"d")

    def outbox(self) -> None:
        self._later(b"o")

    async def listen(self) -> None:
        """Orders from the daemon; end of file means the daemon is gone: stop too."""
        assert self._reader is not None
        while line := await self._reader.readline():
            if line.startswith(b"b"):
                self.backlog = int(line[1:])
            elif line.startswith(b"q"):
                break
        self.stop.set()


class CountingHandler(RelayHandler):
    """The relay handler, counting DATA commands in progress so that a stop answers them first."""

    def __init__(self, gate: Gate) -> None:
        super().__init__(gate)
        self.busy = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.busy += 1
        self.idle.clear()
        try:
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.busy -= 1
            if not self.busy:
                self.idle.set()


async def serve(cfg: Config, listeners: list[socket.socket], channel: Channel) -> None:
    store = Store.open(cfg.db_path, group_fsync=True, create=False)
    store.db.serve()
    store.db.conn.execute(f"PRAGMA busy_timeout={WORKER_BUSY_MS}")
    await channel.open()
    gate = Gate(cfg, store, wake_dispatcher=channel.dispatch, backlog=lambda: channel.backlog)
    store.outbox.on_queued = channel.outbox  # type: ignore[method-assign]
    handler = CountingHandler(gate)

    def stop() -> None:
        gate.closing = True  # before anything else: no further mail may be answered 250
        channel.stop.set()

    store.db.on_replaced = stop
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    host, port = cfg.smtp.listen_addr
    servers = [await start_smtp_server(gate, host, port, handler, sock=sock) for sock in listeners]
    tasks = [
        asyncio.create_task(channel.listen(), name="channel"),
        asyncio.create_task(_heartbeat(channel, gate.replies), name="heartbeat"),
    ]
    channel.send(b"R")
    log.info("intake.worker_serving")
    await channel.stop.wait()
    gate.closing = True
    for server in servers:
        server.close()
    try:
        await asyncio.wait_for(handler.idle.wait(), DRAIN_SECONDS)
    except TimeoutError:
        log.warning("intake.worker_drain_timeout", in_progress=handler.busy)
    await store.drain()
    await asyncio.sleep(0)  # the last replies' writes, queued by the handlers just resumed
    for task in tasks:
        task.cancel()
    _send_counts(channel, gate.replies)
    store.close()
    log.info("intake.worker_stopped")


def _send_counts(channel: Channel, replies: Any) -> None:
    counts = dict(replies)
    replies.clear()
    channel.send(b"h" + json.dumps(counts, separators=(",", ":")).encode())


async def _heartbeat(channel: Channel, replies: Any) -> None:
    """A sign of life for the daemon's supervision, carrying the reply counts for /metrics."""
    while True:
        _send_counts(channel, replies)
        await asyncio.sleep(HEARTBEAT_SECONDS)


def main(argv: list[str] | None = None) -> int:
    from gateway import logging as gwlog

    ap = argparse.ArgumentParser(prog="smsgw-intake")
    ap.add_argument("--listen-fd", type=int, action="append", required=True)
    ap.add_argument("--channel-fd", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--json-logs", choices=["yes", "no", "auto"], default="auto")
    args = ap.parse_args(argv)
    cfg: Config = pickle.load(sys.stdin.buffer)  # written by the daemon that started us, on a pipe
    json_logs = {"yes": True, "no": False}.get(args.json_logs)
    gwlog.configure(json=json_logs, level=args.log_level)
    structlog.contextvars.bind_contextvars(worker=args.name)
    listeners = [socket.socket(fileno=fd) for fd in args.listen_fd]
    channel = Channel(socket.socket(fileno=args.channel_fd))
    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(serve(cfg, listeners, channel))
    except Exception:
        log.exception("intake.worker_failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
