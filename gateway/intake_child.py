"""One intake worker process: the relay port's SMTP sessions, MIME reading and composing.

Started by the daemon (`gateway/intake_workers.py`, which explains the design) as
`python -m gateway.intake_child --listen-fd N [--listen-fd M] --channel-fd C --name intake-1`
with the pickled `Config` on stdin. It opens its own connection to the daemon's database for
reads only (users, networks, opt-outs, quotas; SQLite's `query_only`): every write of a session
(the acceptance, the info@ answer, a premium answer) is sent to the daemon over the channel
(`gateway/intake_channel.py`), which commits it in its group commit and answers once it is on
disk. It never recovers, migrates or seeds anything, which the daemon did before starting it.

Stopping (`q`, SIGTERM, or the channel closing because the daemon died): new commands get `421`,
the listener closes, mails whose DATA is being accepted are answered once the daemon has them on
disk (a write the daemon died before answering gets no reply at all, `gateway.smtp.outcome`: the
client retries), the other sessions hear `421`, and the process exits 0. No orphan outlives a
daemon killed with -9. SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group,
and a worker that stopped on it at once, beside its daemon, closed its copy of the listener before
the daemon's orderly stop, and clients then got a reset instead of `421`; the daemon stops it
with `q`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import pickle
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import structlog

from gateway import conversations, premium
from gateway.codestamp import CODE_CHANGED, code_stamp
from gateway.config import Config, ConfigError
from gateway.intake_channel import GONE, REQUEST_ID, Framed, error_from_wire, pack_request, unpack_request
from gateway.nocore import no_core_dumps
from gateway.parentdeath import die_with_parent
from gateway.queuedepth import Backlog
from gateway.smtp.accept import Limits, Notice, Writes
from gateway.smtp.fairaccept import FairServer
from gateway.smtp.gate import Gate
from gateway.smtp.listener import smtp_factory
from gateway.smtp.outcome import OutcomeUnknown
from gateway.smtp.relay import RelayHandler
from gateway.smtp.servers import relay_tls_context
from gateway.smtp.unknownlog import install as hide_unknown_words
from gateway.stoptiming import HELD_DRAIN_SECONDS
from gateway.store.commit import StoreBusy
from gateway.store.db import Db, Store
from gateway.store.records import Acceptance, AcceptResult
from gateway.tlsrenewal import keep_handed, watch_served
from smsc.logthrottle import flush_all

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 1.0
# How long a session waits for the daemon to answer one write: most of the SMTP idle timeout, so that
# a daemon that is only slow still answers the same client (a 451 and the client's retry would make
# a second SMS of a mail without a Message-ID, if the daemon then took the first), and a 451 just
# before that timeout would have said "421 Idle too long" to a client that had been waiting for us.
# Under systemd a frozen daemon is killed by the watchdog (30 s) long before: the worker then closes
# the connections whose writes it sent unanswered at once, its channel gone.
ANSWER_WAIT_MAX = 300.0
ANSWER_WAIT_SHARE = 0.8
# After that wait the worker asks for the write back (`gateway/intake_accepts.py`) and waits this much
# more for the daemon to grant it (`451`) or answer the write; with neither, the client's connection
# is closed unanswered (`gateway.smtp.outcome`). Still inside the idle timeout.
WITHDRAW_WAIT_MAX = 30.0
WITHDRAW_WAIT_SHARE = 0.15
_ANSWER, _BACKLOG, _STOP, _GO, _WITHDRAWN = b"a"[0], b"b"[0], b"q"[0], b"g"[0], b"x"[0]
_GRANTED = ("withdrawn", None, None)  # the daemon's `x`: the write was taken back, nothing written


class Channel:
    """The worker's end of the socketpair: writes and heartbeats out; answers, backlog, go and stop in."""

    def __init__(
        self,
        sock: socket.socket,
        answer_wait: float = ANSWER_WAIT_MAX,
        withdraw_wait: float = WITHDRAW_WAIT_MAX,
    ) -> None:
        self.sock = sock
        self.answer_wait = answer_wait
        self.withdraw_wait = withdraw_wait
        self.backlog = Backlog()
        self.stop = asyncio.Event()
        self.go = asyncio.Event()  # the daemon's `g`: accept now (`gateway.smtp.fairaccept.Release`)
        self.framed = Framed(self._on_frame)
        self._waiting: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._ids = itertools.count(1)

    async def open(self) -> None:
        await self.framed.open(self.sock)
        self.framed.closed.add_done_callback(self._lost)

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.framed.send(kind, payload)

    async def request(self, name: str, *args: Any) -> Any:
        """Have the daemon run write `name`; its result once on disk, or the error it raised.

        Unanswered past `answer_wait`, it is withdrawn: `StoreBusy` (451) once the daemon says it
        took it back, `OutcomeUnknown` (no reply) if nothing is heard within `withdraw_wait` either,
        or the daemon gone meanwhile: a mail it may have committed is never answered as failed."""
        request_id = next(self._ids) & 0xFFFFFFFF
        if not self.framed.send(b"w", pack_request(request_id, (name, args))):
            raise error_from_wire(GONE)
        loop = asyncio.get_running_loop()
        future = self._waiting[request_id] = loop.create_future()
        # A timer on the future itself: `asyncio.wait_for` wrapped each of them (a mail's every
        # write) in a waiter and callbacks of its own, 1.4 % of this worker's CPU.
        self._timers[request_id] = loop.call_later(self.answer_wait, self._overdue, request_id, name)
        try:
            ok, value = await future
        except TimeoutError:
            waited = self.answer_wait + self.withdraw_wait
            log.error(
                "intake.write_outcome_unknown", write=name, waited=waited, reply="none: connection closed"
            )
            raise OutcomeUnknown(
                f"the daemon did not answer nor take the {name} back in {waited:g} s"
            ) from None
        finally:
            self._timers.pop(request_id).cancel()
            self._waiting.pop(request_id, None)
        if ok:
            return value
        if value is _GRANTED:
            raise StoreBusy(f"the daemon did not answer in {self.answer_wait:g} s; the mail was taken back")
        if value == GONE:
            # Sent, and the daemon died before its answer: committed or not, nobody can say.
            raise OutcomeUnknown("the daemon went away before it answered")
        raise error_from_wire(value)

    def _overdue(self, request_id: int, name: str) -> None:
        """No answer in `answer_wait`: ask for the write back, and give the daemon a while more."""
        future = self._waiting.get(request_id)
        if future is None or future.done():
            return
        log.warning("intake.daemon_not_answering", write=name, waited=self.answer_wait, action="withdraw")
        self.framed.send(b"x", REQUEST_ID.pack(request_id))  # a channel gone fails the future (`_lost`)
        loop = asyncio.get_running_loop()
        self._timers[request_id] = loop.call_later(self.withdraw_wait, _expire, future)

    def _on_frame(self, kind: int, payload: bytes) -> None:
        if kind == _ANSWER:
            request_id, answer = unpack_request(payload)
            future = self._waiting.get(request_id)
            if future is not None and not future.done():  # else: its session went away meanwhile
                future.set_result(answer)
        elif kind == _BACKLOG:
            self.backlog = Backlog.from_wire(payload)
        elif kind == _STOP:
            self.stop.set()
        elif kind == _GO:
            self.go.set()
        elif kind == _WITHDRAWN:
            (request_id,) = REQUEST_ID.unpack(payload)
            future = self._waiting.get(request_id)
            if future is not None and not future.done():
                future.set_result((False, _GRANTED))

    def _lost(self, _closed: object) -> None:
        """The daemon is gone: writes waiting for it end (their clients retry), and we stop."""
        for future in self._waiting.values():
            if not future.done():
                future.set_result((False, GONE))
        self.stop.set()


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class RemoteWrites(Writes):
    """The session writes, run by the daemon: the same operations and results as in its own process."""

    def __init__(self, channel: Channel) -> None:  # no store: nothing is written here
        self.channel = channel

    async def accept(
        self,
        acceptance: Acceptance,
        limits: Limits | None = None,
        notices: Sequence[Notice] = (),
        opening: conversations.Opening | None = None,
    ) -> AcceptResult:
        args = (acceptance, limits, tuple(notices), opening)
        result: AcceptResult = await self.channel.request("accept", *args)
        return result

    async def info(self, rcpt: str, content: bytes) -> bool:
        queued: bool = await self.channel.request("info", rcpt, content)
        return queued

    async def premium(
        self, target: premium.Target, mail_from: str, raw: bytes, client_ip: str | None = None
    ) -> tuple[str, bool]:
        answer: tuple[str, bool] = await self.channel.request("premium", target, mail_from, raw, client_ip)
        return answer


class ReadOnlyDb(Db):
    """The worker's connection: a write here would be a second writer on the daemon's WAL file."""

    def write(self, *_args: Any, **_kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise RuntimeError("an intake worker does not write the database: its writes go to the daemon")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raise RuntimeError("an intake worker does not write the database: its writes go to the daemon")
        yield  # pragma: no cover


def open_store(cfg: Config) -> Store:
    """The worker's store, for reads; SQLite refuses any write on it too (`query_only`)."""
    store = Store(ReadOnlyDb.open(cfg.db_path, create=False, check=False))  # the daemon checked it
    store.db.serve()
    store.db.conn.execute("PRAGMA query_only=ON")
    return store


async def _answer_all(gate: Gate) -> None:
    """Until every mail being accepted is answered and its reply has left, as in the daemon's own stop
    (`gateway.smtp.stopping`). While the daemon is there its commit may be slow (a held fsync), and a
    bound of 10 s said `421` to a mail it went on to commit (the retry: a second SMS): the wait ends
    just before the daemon kills this process, so that `close_all` still tells the idle sessions `421`
    and closes a mail still running without a reply, as the kill would. With the daemon gone every
    write ends at once (`Channel._lost`)."""
    if owed := await gate.sessions.answered(HELD_DRAIN_SECONDS):
        log.warning("intake.worker_drain_timeout", in_progress=owed, reply="none: connection closed")


async def serve(cfg: Config, listeners: list[socket.socket], channel: Channel) -> None:
    store = open_store(cfg)
    channel.answer_wait = min(ANSWER_WAIT_MAX, cfg.smtp.timeout_seconds * ANSWER_WAIT_SHARE)
    channel.withdraw_wait = min(WITHDRAW_WAIT_MAX, cfg.smtp.timeout_seconds * WITHDRAW_WAIT_SHARE)
    await channel.open()
    gate = Gate(cfg, store, writes=RemoteWrites(channel), backlog=lambda: channel.backlog)
    handler = RelayHandler(gate)

    def stop() -> None:
        gate.closing = True  # before anything else: no further mail may be answered 250
        channel.stop.set()

    def signalled() -> None:
        # The daemon hears why this worker goes: under systemd the same SIGTERM reaches the daemon
        # too, maybe after this worker's end is seen, which is then no crash to restart.
        channel.send(b"S")
        stop()

    # SIGTERM only: systemd sends it to every process of the unit. SIGINT (Ctrl-C in the daemon's
    # terminal) is the daemon's to act on (`main` ignores it here), which then sends `q`.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, signalled)
    keep_handed(cfg)  # the self-signed pair named as the daemon names it
    try:
        tls = relay_tls_context(cfg)
    except ConfigError as exc:
        # The daemon loaded it at its start; changed since (a renewal half done, a key made
        # unreadable), it would make every restart of this worker fail and the relay port serve
        # nobody. Mail in clear beats no mail: the port serves without STARTTLS, and says why.
        log.error("smtp.relay_tls_unusable", error=str(exc), serving="without STARTTLS")
        tls = None
    hide_unknown_words()  # aiosmtpd's log of an unknown command word, as in the daemon (a password's base64)
    factory = smtp_factory(gate, handler, tls_context=tls)
    shared = cfg.smtp.intake_processes > 1
    servers = [FairServer(factory, sock, shared=shared) for sock in listeners]
    heartbeat = asyncio.create_task(_heartbeat(channel, gate.replies), name="heartbeat")
    # A renewed certificate is served by this worker too, without a restart (`gateway.tlsrenewal`).
    renewals = asyncio.create_task(watch_served(cfg.gateway.hostname), name="tls-renewals")
    channel.send(b"R")
    # Accepting waits for the daemon's `g`, so that the workers of a (re)start begin together and
    # share the connections waiting in the kernel (`gateway/smtp/fairaccept.py`).
    waits = [asyncio.ensure_future(channel.go.wait()), asyncio.ensure_future(channel.stop.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not channel.stop.is_set():
        for server in servers:
            server.start_serving()
        log.info("intake.worker_serving")
    await channel.stop.wait()
    gate.closing = True
    for server in servers:
        server.close()
    await _answer_all(gate)
    if closed := gate.sessions.close_all():  # every answer is out: the idle ones hear 421, as in one process
        log.info("smtp.sessions_closed", sessions=closed)
        await asyncio.sleep(0)  # their 421 leaves before the process does
    heartbeat.cancel()
    renewals.cancel()
    _send_counts(channel, gate.replies)
    channel.framed.close()
    store.close()
    flush_all()
    log.info("intake.worker_stopped")


def _send_counts(channel: Channel, replies: Any) -> None:
    counts = dict(replies)
    replies.clear()
    channel.send(b"h", json.dumps(counts, separators=(",", ":")).encode())


async def _heartbeat(channel: Channel, replies: Any) -> None:
    """A sign of life for the daemon's supervision, carrying the reply counts for /metrics."""
    while True:
        _send_counts(channel, replies)
        await asyncio.sleep(HEARTBEAT_SECONDS)


def main(argv: list[str] | None = None) -> int:
    from gateway import logging as gwlog

    no_core_dumps()  # before the config, every secret in it, comes down the pipe (inherited, and said again)
    die_with_parent()  # a worker stopped when its daemon is killed would keep the relay port
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # from the start: `systemctl kill -s HUP` reaches us too
    # From the start too: Ctrl-C reaches the terminal's whole process group, and the daemon stops
    # this worker itself (`q`), after its own listener copy is closed (see the module's docstring).
    # Ignored, not handled, so that asyncio.run installs no KeyboardInterrupt of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    ap = argparse.ArgumentParser(prog="smsgw-intake")
    ap.add_argument("--listen-fd", type=int, action="append", required=True)
    ap.add_argument("--channel-fd", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--log-level", default="INFO")
    ap.add_argument("--json-logs", choices=["yes", "no", "auto"], default="auto")
    ap.add_argument("--code-stamp", default="")
    args = ap.parse_args(argv)
    if args.code_stamp and args.code_stamp != code_stamp():
        # Before the config is read: the daemon's pickled records need not fit this code.
        gwlog.configure(json={"yes": True, "no": False}.get(args.json_logs), level=args.log_level)
        log.error("intake.code_changed", worker=args.name, daemon=args.code_stamp, worker_code=code_stamp())
        return CODE_CHANGED
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
