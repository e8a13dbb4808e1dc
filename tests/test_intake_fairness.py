"""Intake workers share the connections waiting at a (re)start (`gateway/smtp/fairaccept.py`).

A real daemon with two intake workers, real SMTP clients: the clients' connections reach the
daemon's listening socket before any worker serves (as reconnects after a restart do) and wait in
the kernel's queue. Each worker used to take all of them in one wake-up (asyncio: up to 100,
uvloop: until the queue is empty), and relaying mail servers keep their connections, so one worker
served nearly all the mail (10,565 against 12 in a soak). Now both begin together and each
readiness accepts one connection, so each worker serves a fair share.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import DOMAIN, STAFF, free_port, mail
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config, worker_pids
from tests.test_process import start_daemon

CLIENTS = 32


async def _reply(reader: asyncio.StreamReader) -> bytes:
    """One SMTP reply (its last line), multi-line ones included."""
    while True:
        line = await reader.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def _one_mail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, i: int) -> bytes:
    """EHLO and one mail on a connection opened before the workers served; the mail's reply."""
    assert (await _reply(reader)).startswith(b"220")
    rcpt = f"60112{i:04d}@{DOMAIN}"
    body = mail(rcpt, f"Share {i}").as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    for command in ("EHLO client.acme.example", f"MAIL FROM:<{STAFF}>", f"RCPT TO:<{rcpt}>"):
        writer.write(command.encode() + b"\r\n")
        assert (await _reply(reader)).startswith(b"250"), command
    writer.write(b"DATA\r\n")
    assert (await _reply(reader)).startswith(b"354")
    writer.write(body + b".\r\n")
    answer = await _reply(reader)
    writer.write(b"QUIT\r\n")
    await _reply(reader)
    writer.close()
    return answer


async def test_connections_waiting_at_the_start_are_shared_by_both_workers(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 2)
        proc = await start_daemon(config, smtp_port)  # returns once the daemon's socket takes connects
        try:
            conns = [await asyncio.open_connection("127.0.0.1", smtp_port) for _ in range(CLIENTS)]
            # The premise: they wait in the kernel's queue, no worker accepting yet.
            assert not log_events(tmp_path, "intake.worker_serving")
            served = await _served(tmp_path, conns)
            # Each worker a fair share (the old code: mostly 32 and 0, or 31 and 1).
            assert min(served["intake-1"], served["intake-2"]) >= CLIENTS // 4, served
        finally:
            await stop(proc)


async def test_a_worker_slower_to_start_still_gets_its_share(tmp_path: Path) -> None:
    # A restart on a busy machine: one worker starts later than the other (here intake-2 is held
    # with SIGSTOP from its spawn on). intake-1 waits for it, up to 2 s, instead of taking every
    # connection waiting meanwhile (the old code: it served all 32).
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 2)
        proc = await start_daemon(config, smtp_port)
        held: int | None = None
        try:
            await until(lambda: len(worker_pids(tmp_path)) == 2, "both workers spawned")
            (late,) = [
                r["pid"] for r in log_events(tmp_path, "intake.worker_started") if r["worker"] == "intake-2"
            ]
            held = int(late)  # type: ignore[call-overload]
            os.kill(held, signal.SIGSTOP)
            conns = [await asyncio.open_connection("127.0.0.1", smtp_port) for _ in range(CLIENTS)]
            assert not log_events(tmp_path, "intake.worker_serving")
            # Until intake-1 accepts (the old code: once started), or 0.6 s: far within its 2 s bound.
            for _ in range(60):
                if log_events(tmp_path, "intake.worker_serving"):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the time it took the old code's intake-1 to take them all
            os.kill(held, signal.SIGCONT)
            held = None
            served = await _served(tmp_path, conns)
            assert min(served["intake-1"], served["intake-2"]) >= CLIENTS // 4, served
        finally:
            if held is not None:
                os.kill(held, signal.SIGCONT)
            await stop(proc)


async def _served(
    tmp_path: Path, conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
) -> Counter[str]:
    """One mail on each connection: how many each worker accepted."""
    answers = await asyncio.wait_for(
        asyncio.gather(*(_one_mail(r, w, i) for i, (r, w) in enumerate(conns))), 60
    )
    assert all(a.startswith(b"250") for a in answers), answers
    served = Counter(str(r["worker"]) for r in log_events(tmp_path, "smtp.accepted"))
    assert sum(served.values()) == len(conns)
    return served


# A FairServer alone in a process with few descriptors left, on asyncio's loop or uvloop (the worker
# uses uvloop where installed): it echoes lines, and closes a connection after "bye".
_SERVER = r"""
import asyncio, os, resource, socket, sys
from gateway.smtp.fairaccept import FairServer

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
        if data.endswith(b"bye\n"):
            self.transport.close()

async def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = FairServer(Echo, sock, shared=False)
    # Every descriptor number below the limit taken, then three given back (the loop may take one).
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    fillers = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    for fd in fillers[-3:]:
        os.close(fd)
    print(sock.getsockname()[1], flush=True)
    server.start_serving()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    server.close()
    print("closed", server.is_serving(), server.sockets, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


async def _echoed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bool:
    writer.write(line)
    try:
        return await asyncio.wait_for(reader.readline(), 0.5) == line
    except TimeoutError:
        return False


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_out_of_descriptors_pauses_accepting_and_close_stops_it(loop: str) -> None:
    # As asyncio's own server: accept() failing with EMFILE is logged and accepting pauses for a
    # second (the socket stays readable: retrying at once would spin); the connections wait in the
    # kernel's queue meanwhile and are served once descriptors are free. close() stops accepting
    # and closes the socket; connections already accepted go on.
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER, loop,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        conns += [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
        echoed = [await _echoed(r, w, b"hi\n") for r, w in conns]
        served = echoed.count(True)
        assert 1 <= served <= 3 and echoed == [True] * served + [False] * (6 - served), echoed
        for r, w in conns[:served]:
            assert await _echoed(r, w, b"bye\n")
        for r, _w in conns[served : 2 * served]:
            assert await asyncio.wait_for(r.readline(), 5) == b"hi\n"  # accepted after the pause
        proc.stdin.write(b"close\n")
        lines = []
        while not (line := await asyncio.wait_for(proc.stdout.readline(), 5)).startswith(b"closed"):
            lines.append(line)
        assert line.split() == [b"closed", b"False", b"()"]
        assert any(b"smtp.accept_paused" in x and b"Too many open files" in x for x in lines), lines
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        r, w = conns[served]
        assert await _echoed(r, w, b"still\n")
    finally:
        for _r, w in conns:
            w.close()
        proc.kill()
        await proc.wait()
