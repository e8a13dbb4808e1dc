"""An intake worker stopped (SIGSTOP, a debugger) when its daemon is killed outright (SIGKILL, the OOM
killer) outside systemd, which would kill the whole group: a running worker sees its channel close and
ends, but a stopped one sees nothing and kept its copy of the relay port's socket, so the next start
could not bind the port until someone found and killed it. Against the real daemon run as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from tests.conftest import free_port
from tests.test_process import start_daemon, until_refused, write_config


def children(pid: int) -> list[int]:
    """The processes `pid` started (its intake workers), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def gone(pid: int) -> bool:
    """Whether `pid` has ended (reaped, or a zombie: it holds no socket any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_a_stopped_worker_ends_with_its_daemon_killed_and_frees_the_port(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port, intake_processes=1)
    proc = await start_daemon(config, smtp_port)
    worker = None
    try:
        for _ in range(200):  # the relay port answers once the worker serves; it is started before
            workers = children(proc.pid)
            if workers:
                worker = workers[0]
                break
            time.sleep(0.05)
        assert worker is not None, "no intake worker"
        reader, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
        assert (await asyncio.wait_for(reader.readline(), 30)).startswith(b"220")  # the worker serves
        writer.close()
        os.kill(worker, signal.SIGSTOP)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 15
        while not gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(worker), "the stopped worker outlived its daemon"
        await until_refused(smtp_port)
    finally:
        proc.kill()
        if worker is not None and not gone(worker):
            os.kill(worker, signal.SIGKILL)
