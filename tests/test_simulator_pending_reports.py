"""The simulator's delivery reports survive a stop of the process that runs it.

The simulator held the reports it owed (each waits `dlr_delay_seconds`, or for its client to bind) only
in memory and cancelled them at close: after Ctrl-C, SIGTERM or kill -9 of the daemon, whose built-in
SMSC it is, the SMS it had taken stayed `submitted` until their validity ran out (79 of ~1,900 in a
first-day admin's runs). It now keeps them in a small file beside its log, and the next start sends
them, with the outcome it would have given, once the gateway binds. `smsgw simulator run` does the same.
The file is read only from its end and rewritten with only what is still owed, so no file stalls a start.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.config import SimulatorSection
from smsc.base import ReportStatus
from smsc.simulator import owed as owed_module
from smsc.simulator.core import SimulatorCore
from smsc.simulator.owed import Owed, OwedReports, owed_path
from tests.conftest import DOMAIN, config_text, free_port, mail, send_blocking
from tests.test_process import CLI, ROOT, start_daemon

DELAY = 5  # seconds a report waits in the simulator: the stop comes inside it
NUMBERS = ["601000001", "601000002", "601000013", "601000004"]  # a number ending 13 fails
OUTCOMES = ["delivered", "delivered", "failed", "delivered"]


def states(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT state FROM parts ORDER BY id")]


async def until(predicate: object, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.1)


async def send_mails(smtp_port: int, texts: list[str]) -> None:
    rcpts = [f"{n}@{DOMAIN}" for n in NUMBERS]
    for text in texts:
        result = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpts, text), rcpts)
        assert result.error is None and not result.refused


def simulator_section(tmp_path: Path, smpp: int, cimd2: int, *, enabled: bool) -> str:
    return (
        f"[simulator]\nenabled = {str(enabled).lower()}\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\n"
        f'control_port = {free_port()}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = {DELAY}\n'
    )


def with_simulator(text: str, tmp_path: Path, smpp: int) -> str:
    """`text` (a `config_text`) with the built-in simulator on, its SMPP server on `smpp`."""
    return text.replace(
        "[simulator]\nenabled = false\n", simulator_section(tmp_path, smpp, free_port(), enabled=True)
    )


async def test_reports_pending_at_a_kill_of_the_daemon_are_sent_by_its_next_start(tmp_path: Path) -> None:
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        with_simulator(config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port), tmp_path, smpp)
    )
    db = tmp_path / "state" / "smsgw.db"
    proc = await start_daemon(config, smtp_port)
    try:
        await send_mails(smtp_port, ["First", "Second", "Third"])
        # Every SMS taken by the simulator (its message id stored), none reported yet: then kill -9.
        await until(lambda: states(db) == ["submitted"] * 12, DELAY - 1, "12 parts submitted")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert states(db) == ["submitted"] * 12

    proc = await start_daemon(config, smtp_port)
    try:
        await until(lambda: states(db) == OUTCOMES * 3, DELAY + 20, f"every SMS reported: {states(db)}")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    # The log keeps one line per part (README: `tail -n 1 var/simulator.jsonl` shows the SMS).
    logged = [json.loads(line) for line in (tmp_path / "sim.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in logged] == OUTCOMES * 3
    assert still_owed(tmp_path / "sim.jsonl") == []  # nothing is owed any more


async def start_simulator(config: Path, port: int) -> subprocess.Popen[bytes]:
    """`smsgw simulator run` as a process of its own, once its CIMD2 port answers."""
    with (config.parent / "simulator.log").open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "simulator", "run"], cwd=ROOT, stdout=out, stderr=out
        )
    for _ in range(300):
        assert proc.poll() is None, (config.parent / "simulator.log").read_text()[-3000:]
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        w.close()
        return proc
    proc.kill()
    raise AssertionError("the simulator did not listen within 15 s")


async def test_the_standalone_simulator_stopped_by_sigterm_sends_them_at_its_next_start(
    tmp_path: Path,
) -> None:
    # The gateway's CIMD2 link to `smsgw simulator run`: CIMD2 names an SMS by the submit time the
    # SMSC answered with, which a report sent by the next run must carry unchanged.
    smpp, cimd2, smtp_port = free_port(), free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        config_text(tmp_path, smsc_port=cimd2, smtp_port=smtp_port)
        .replace('type = "smpp"', 'type = "cimd2"')
        .replace("[simulator]\nenabled = false\n", simulator_section(tmp_path, smpp, cimd2, enabled=False))
    )
    db = tmp_path / "state" / "smsgw.db"
    sim = await start_simulator(config, cimd2)
    daemon = await start_daemon(config, smtp_port)
    try:
        await send_mails(smtp_port, ["First"])
        await until(lambda: states(db) == ["submitted"] * 4, DELAY - 1, "4 parts submitted")
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=30) == 0
        assert states(db) == ["submitted"] * 4
        sim = await start_simulator(config, cimd2)
        await until(lambda: states(db) == OUTCOMES, DELAY + 20, f"every SMS reported: {states(db)}")
    finally:
        for proc in (daemon, sim):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def still_owed(log: Path) -> list[str]:
    """The message ids a next start of the simulator with this log would report on."""
    kept = OwedReports(owed_path(log), log)
    try:
        return [o.message_id for o in kept.load() or []]
    finally:
        kept.close()


def owed(message_id: int, at: datetime) -> Owed:
    return Owed(
        str(message_id), "smpp", "smsgw", "48100200300", "+48601000001", at, ReportStatus.DELIVERED, at
    )


async def test_a_start_reads_only_the_end_of_a_huge_file_and_leaves_it_small(tmp_path: Path) -> None:
    # Far more than a start reads: one report owed long ago, 30,000 owed and settled, then three owed
    # (one settled since) and a line torn by a full disk. The start reads only the end: it sends the
    # two owed there, forgets the one before, and rewrites the file with only the two.
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    lines = [json.dumps(owed(7, at).record())]
    for n in range(1, 30_001):
        lines += [json.dumps(owed(n, at).record()), json.dumps({"settled": str(n)})]
    lines += [json.dumps(owed(n, at).record()) for n in (40_001, 40_002, 40_003)]
    lines += [json.dumps({"settled": "40002"}), '{"owed": "40004", "protoc']
    path = owed_path(tmp_path / "sim.jsonl")
    path.write_text("\n".join(lines))
    assert path.stat().st_size > owed_module.TAIL_BYTES

    core = SimulatorCore(SimulatorSection(), tmp_path / "sim.jsonl", now=lambda: at + timedelta(hours=1))
    await core.resume()
    try:
        assert [json.loads(line)["owed"] for line in path.read_text().splitlines()] == ["40001", "40003"]
        assert sorted(core._messages) == ["40001", "40003"]
        assert core._next_id >= 40_003  # never an id the gateway may still wait on a report for
        # While it runs, settled reports do not pile up in the file.
        for n in range(50_000, 50_000 + 2 * owed_module.COMPACT_AFTER):
            core.owed.owe(owed(n, at))  # type: ignore[union-attr]
            core.report_taken(str(n), ReportStatus.DELIVERED)
        assert len(path.read_text().splitlines()) <= owed_module.COMPACT_AFTER + 2
    finally:
        await core.close()


async def test_a_log_that_is_not_a_file_keeps_nothing(tmp_path: Path) -> None:
    core = SimulatorCore(SimulatorSection(), Path("/dev/null"))
    await core.resume()
    assert core.owed is None
    await core.close()


def test_reports_acknowledged_are_not_sent_again(tmp_path: Path) -> None:
    path, log = tmp_path / "owed", tmp_path / "sim.jsonl"
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    first = OwedReports(path, log)
    assert first.load() == []
    first.owe(owed(1, at))
    first.owe(owed(2, at))
    first.settle("1")
    first.close()
    again = OwedReports(path, log)
    assert [o.message_id for o in again.load() or []] == ["2"]
    again.close()


async def test_a_second_simulator_on_the_same_log_keeps_none_and_leaves_the_first_its_file(
    tmp_path: Path,
) -> None:
    # It would rename a new file over the one the first appends to (`smsgw simulator run` beside
    # the daemon fails on its ports only after its start): the first's later reports were lost.
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    first = SimulatorCore(SimulatorSection(), tmp_path / "sim.jsonl")
    second = SimulatorCore(SimulatorSection(), tmp_path / "sim.jsonl")
    await first.resume()
    await second.resume()
    assert first.owed is not None and second.owed is None
    first.owed.owe(owed(1, at))
    await first.close()
    await second.close()
    assert still_owed(tmp_path / "sim.jsonl") == ["1"]


async def test_a_report_acknowledged_at_once_costs_the_file_nothing_and_a_stop_keeps_those_held(
    tmp_path: Path,
) -> None:
    # A line owed and one settled for every SMS made the simulator a third dearer a part, and its
    # appends made the gateway's WAL fsyncs dearer (one disk): a report due at once is written only if
    # still owed HOLD_SECONDS later; a stop writes those held.
    log = tmp_path / "sim.jsonl"
    path = owed_path(log)
    kept = OwedReports(path, log)
    assert kept.load() == []
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    for n in range(1, 101):
        kept.owe(owed(n, at))
        kept.settle(str(n))
    kept.owe(owed(200, at))  # still owed when the daemon stops
    later = Owed("300", "smpp", "smsgw", "48100200300", "+48601000001", at, ReportStatus.DELIVERED,
                 at + timedelta(seconds=5))  # fmt: skip
    kept.owe(later)  # due later: written at once, as before
    assert [json.loads(line)["owed"] for line in path.read_text().splitlines()] == ["300"]
    await asyncio.sleep(owed_module.HOLD_SECONDS + 0.2)
    assert [json.loads(line).get("owed") for line in path.read_text().splitlines()] == ["300", "200"]
    kept.owe(owed(201, at))
    kept.close()  # a stop: what is held is written
    assert still_owed(log) == ["300", "200", "201"]
