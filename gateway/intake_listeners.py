"""The relay port's listening sockets, bound by the daemon and inherited by its intake workers
(`gateway/intake_workers.py` says why one socket for all), and a worker's end: waited for, named."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess

import structlog

from gateway.peeraddr import bind_all

log = structlog.get_logger(__name__)

LISTEN_BACKLOG = 512  # connections the kernel holds while a worker (re)starts


def signal_name(number: int) -> str:
    """SIGKILL for 9: a worker's end as its exit status -9 says it."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for host:port, one per address ("::" as both stacks, `gateway.peeraddr`)."""
    return bind_all(host, port, LISTEN_BACKLOG)


async def reap(proc: subprocess.Popen[bytes], within: float) -> int:
    """A worker's exit status; one still running `within` seconds on (its channel closed, or told to
    stop) is killed: its sessions waiting for a write then get no reply (`gateway.smtp.outcome`)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), within)
    except TimeoutError:
        log.error("intake.worker_killed", pid=proc.pid, after_seconds=within)
        proc.kill()
        return await asyncio.to_thread(proc.wait)
