"""A phone's SMS the simulator holds for a client not bound survives a restart of the daemon.

`smsgw simulator send-mo` answered ok for an MO it held (no client bound), and a restart of the daemon,
whose built-in SMSC the simulator is, lost it: a premium vote the phone paid for was never seen. The
simulator now keeps its held MOs beside its log and the next start delivers them once the gateway binds.
The real daemon as a process, its simulator's control port, SIGTERM, a second start.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_process import smsgw, start_daemon
from tests.test_simulator_pending_reports import simulator_section, until


def mos(db: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return list(conn.execute("SELECT source, text FROM mo ORDER BY id"))


async def test_an_mo_held_while_nothing_was_bound_is_delivered_after_a_restart(tmp_path: Path) -> None:
    sim_smpp, elsewhere, smtp_port = free_port(), free_port(), free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=elsewhere, smtp_port=smtp_port).replace(
        "[simulator]\nenabled = false\n", simulator_section(tmp_path, sim_smpp, free_port(), enabled=True)
    )
    config.write_text(text)  # the link dials a port nobody listens on: nothing binds the simulator
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        sent = await asyncio.to_thread(
            smsgw, config, "simulator", "send-mo", "--from", "+48601222333", "--to", "+48100200300", "Tak"
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
    assert mos(db) == []
    config.write_text(text.replace(f"\nport = {elsewhere}\n", f"\nport = {sim_smpp}\n"))  # the link dials it
    proc = await start_daemon(config, smtp_port)
    try:
        await until(lambda: mos(db) == [("+48601222333", "Tak")], 20, "the held MO recorded")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
