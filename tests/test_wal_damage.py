"""A damaged or missing WAL at start never silently forgets mail answered 250 (RELIABILITY.md F9).

The serving daemon checkpoints only past a size, so after a crash `smsgw.db-wal` holds every mail
accepted since. SQLite takes the first frame whose checksum fails as the end of the log, and a
missing WAL as an empty one: the database it shows then passes its integrity check, and the daemon
started with 2, 4 or all 5 of 5 accepted mails gone and not a word logged. Now the start looks at
the files before SQLite does, keeps a copy of the WAL and -shm, and exits 3 naming the file and the
way out (`smsgw restore`, or `smsgw accept-wal-loss`); a crash with the WAL intact and a clean stop
start as before, with every mail. A WAL a process left without closing, or one still in use, has a
module of its own (test_wal_damage_unclosed.py); the helpers it and other modules import stay here.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from gateway.store import walcheck, walfile
from tests.conftest import DOMAIN, free_port, mail, send_blocking
from tests.test_db_missing import run_to_exit
from tests.test_process import smsgw, start_daemon, write_config

MAILS = 5


@contextmanager
def smsc_listener(port: int) -> Iterator[socket.socket]:
    """A socket on the SMSC's port that only counts who connects: a refused start connects to nobody."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def texts(db: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM messages ORDER BY id")]


async def crashed_state(
    tmp_path: Path, *, checkpointed: bool = False, later: int = 0
) -> tuple[Path, int, int]:
    """A state directory whose daemon (started once before and stopped cleanly) accepted MAILS mails
    (250 each, nothing listening on the SMSC port) and was then killed with SIGKILL: the mails live
    only in its WAL, or (`checkpointed`) in the database file too, copied there by a checkpoint that
    left the WAL as it was, and `later` mails after that checkpoint, appended to the WAL (a reader's
    snapshot kept SQLite from starting it over). (config, SMTP port, SMSC port)."""
    smtp_port, smsc_port = free_port(), free_port()
    config = write_config(tmp_path, smsc_port, smtp_port)
    proc = await start_daemon(config, smtp_port)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    state = tmp_path / "state"
    assert not (state / "smsgw.db-wal").exists() and not walcheck.flag_path(state / "smsgw.db").exists()
    proc = await start_daemon(config, smtp_port)
    reader = None
    try:
        for n in range(MAILS):
            rcpt = f"60112345{n}@{DOMAIN}"
            res = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, f"accepted mail {n}"), [rcpt])
            assert res.error is None, res
        if later:
            reader = subprocess.Popen(
                [sys.executable, "-c", READER, str(state / "smsgw.db")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert reader.stdout is not None and reader.stdout.readline() == b"reading\n"
        while checkpointed:  # as the daemon's own passive checkpoints do past 16 MB
            with closing(sqlite3.connect(state / "smsgw.db")) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            shm = (state / "smsgw.db-shm").read_bytes()[:100]  # mxFrame at 16, nBackfill at 96
            max_frame, backfill = (int.from_bytes(shm[at : at + 4], sys.byteorder) for at in (16, 96))
            checkpointed = backfill < max_frame
        for n in range(later):
            rcpt = f"60112346{n}@{DOMAIN}"
            res = await asyncio.to_thread(send_blocking, smtp_port, mail(rcpt, f"later mail {n}"), [rcpt])
            assert res.error is None, res
    finally:
        proc.kill()
        proc.wait()
        if reader is not None:  # killed too: closing the last connection would checkpoint the WAL
            reader.kill()
            reader.communicate()  # its pipes closed
    assert (state / "smsgw.db-wal").stat().st_size > 0
    assert walcheck.flag_path(state / "smsgw.db").exists()
    return config, smtp_port, smsc_port


# A reader holding its snapshot (an sqlite3 shell in a transaction) until it is killed.
READER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN")
c.execute("SELECT COUNT(*) FROM messages").fetchone()
print("reading", flush=True)
sys.stdin.read()
"""


def frames(wal: Path) -> int:
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    return (wal.stat().st_size - walfile.WAL_HEADER) // (walfile.FRAME_HEADER + page)


def refused(config: Path, smsc_port: int, *, words: str) -> str:
    """`smsgw run` exits 3 with the message, connects to no SMSC, and keeps the WAL's copy."""
    with smsc_listener(smsc_port) as sock:
        code, out = run_to_exit(config)
        assert not connected(sock)
    assert code == 3, out
    assert "smsgw.db-wal" in out and words in out, out
    assert "smsgw accept-wal-loss" in out and "smsgw restore" in out, out
    assert "daemon.ready" not in out
    return out


async def starts_with(config: Path, smtp_port: int, expected: list[str]) -> str:
    """The daemon starts, holds `expected`, and logs nothing about its store; its log."""
    log = config.parent / "daemon.log"
    offset = log.stat().st_size if log.exists() else 0
    proc = await start_daemon(config, smtp_port)
    # Ready before the stop: the relay port answers while the start still waits for its workers, and
    # a stop then is never said ready (the start is given up, not announced).
    deadline = time.monotonic() + 30
    while '"daemon.ready"' not in log.read_text()[offset:] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    out = log.read_text()[offset:]
    assert "store.wal_refused" not in out
    held = texts(config.parent / "state" / "smsgw.db")
    assert [t for t in held if t in ACCEPTED] == expected
    return out


ACCEPTED = [f"accepted mail {n}" for n in range(MAILS)]


async def test_a_kill_with_the_wal_intact_starts_with_every_mail_and_a_clean_stop_too(tmp_path: Path) -> None:
    config, smtp_port, _ = await crashed_state(tmp_path)
    await starts_with(config, smtp_port, ACCEPTED)
    state = tmp_path / "state"
    assert not walcheck.flag_path(state / "smsgw.db").exists()  # the stop was clean: the WAL was checkpointed
    await starts_with(config, smtp_port, ACCEPTED)


async def test_a_wal_cut_mid_frame_is_refused_and_kept(tmp_path: Path) -> None:
    config, _, smsc_port = await crashed_state(tmp_path)
    wal = tmp_path / "state" / "smsgw.db-wal"
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    cut = walfile.WAL_HEADER + (frames(wal) * 2 // 3) * (walfile.FRAME_HEADER + page) + 100
    os.truncate(wal, cut)
    refused(config, smsc_port, words="cut short")
    kept = sorted((tmp_path / "state").glob("smsgw.db-wal.kept-*"))
    assert len(kept) == 1 and kept[0].stat().st_size == cut
    # Refused again (monitoring's `smsgw status` too), with no second copy of the same file.
    status = smsgw(config, "status")
    assert status.returncode == 3 and "cut short" in status.stderr, status.stderr
    assert len(list((tmp_path / "state").glob("smsgw.db-wal.kept-*"))) == 1


async def test_a_damaged_wal_whose_every_frame_is_in_the_database_file_is_set_aside(tmp_path: Path) -> None:
    # A checkpoint had copied every frame into the file (the -shm: nBackfill = mxFrame), and the WAL
    # kept them. With a frame damaged the start refused, and accept-wal-loss let SQLite read the
    # frames before the damage as the log: older pages copied over newer ones, mail answered 250 gone.
    config, smtp_port, _ = await crashed_state(tmp_path, checkpointed=True)
    state = tmp_path / "state"
    wal = state / "smsgw.db-wal"
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    with wal.open("r+b") as f:
        f.seek(walfile.WAL_HEADER + (frames(wal) // 2) * (walfile.FRAME_HEADER + page) + 30)
        f.write(os.urandom(200))
    out = await starts_with(config, smtp_port, ACCEPTED)
    assert "store.wal_already_in_database" in out, out
    assert len(list(state.glob("smsgw.db-wal.kept-*"))) == 1  # as it was, should anyone want it


async def test_accepting_a_damaged_wal_older_than_the_file_keeps_what_the_file_holds(tmp_path: Path) -> None:
    # A checkpoint had copied the first mails' frames into the file; one more mail came after it, and
    # a frame the checkpoint had copied is damaged. The later mail is lost (the start refuses, as it
    # should); accept-wal-loss replayed the frames before the damage over the newer pages of the file.
    config, smtp_port, smsc_port = await crashed_state(tmp_path, checkpointed=True, later=1)
    wal = tmp_path / "state" / "smsgw.db-wal"
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    shm = (tmp_path / "state" / "smsgw.db-shm").read_bytes()[:100]
    max_frame, backfill = (int.from_bytes(shm[at : at + 4], sys.byteorder) for at in (16, 96))
    assert 3 < backfill < max_frame  # the later mail's frames follow those in the file
    with wal.open("r+b") as f:
        f.seek(walfile.WAL_HEADER + (backfill // 2) * (walfile.FRAME_HEADER + page) + 30)  # one in the file
        f.write(os.urandom(200))
    refused(config, smsc_port, words="is damaged")
    accepted = smsgw(config, "accept-wal-loss")
    assert accepted.returncode == 0, accepted.stderr
    await starts_with(config, smtp_port, ACCEPTED)  # every mail of the file, the later one lost (said)
    assert f"took {backfill} valid" in accepted.stdout, accepted.stdout


async def test_random_bytes_in_a_middle_frame_are_refused(tmp_path: Path) -> None:
    config, _, smsc_port = await crashed_state(tmp_path)
    wal = tmp_path / "state" / "smsgw.db-wal"
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    with wal.open("r+b") as f:
        f.seek(walfile.WAL_HEADER + (frames(wal) // 2) * (walfile.FRAME_HEADER + page) + 30)
        f.write(os.urandom(200))
    (tmp_path / "state" / "smsgw.db-shm").unlink()  # the damage alone tells, whatever the -shm says
    refused(config, smsc_port, words="is damaged")


async def test_a_wal_deleted_after_a_kill_is_refused_until_the_admin_accepts_the_loss(tmp_path: Path) -> None:
    config, smtp_port, smsc_port = await crashed_state(tmp_path)
    state = tmp_path / "state"
    (state / "smsgw.db-wal").unlink()  # `rm smsgw.db-wal`: the -shm the crash left stays
    refused(config, smsc_port, words="is missing")
    # check-config meanwhile refuses as the start does, and opens nothing that would hide the loss.
    looked = smsgw(config, "check-config")
    assert looked.returncode == 3 and "is missing" in looked.stderr, looked.stderr
    refused(config, smsc_port, words="smsgw.db-wal")
    accepted = smsgw(config, "accept-wal-loss")
    assert accepted.returncode == 0, accepted.stderr
    out = await starts_with(config, smtp_port, [])
    assert "daemon.ready" in out
    assert not [t for t in texts(state / "smsgw.db") if t in ACCEPTED]  # what was lost is lost, but said


async def test_accept_wal_loss_with_nothing_lost_says_so_and_logs_no_loss(tmp_path: Path) -> None:
    # On a healthy database it said "took 0 valid WAL frame(s) ... what the WAL lost is lost" and
    # logged store.wal_loss_accepted at warning; beside the running daemon it said "stop it before
    # starting another; stop it first".
    smtp_port = free_port()
    config = write_config(tmp_path, free_port(), smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:
        running = smsgw(config, "accept-wal-loss")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    assert running.returncode == 1
    assert f"smsgw is running (pid {proc.pid})" in running.stderr, running.stderr
    assert "no WAL loss to accept" in running.stderr and "starting another" not in running.stderr
    state = tmp_path / "state"
    crash_flag = walcheck.flag_path(state / "smsgw.db")
    assert not crash_flag.exists()  # stopped cleanly
    healthy = smsgw(config, "accept-wal-loss")
    assert healthy.returncode == 0, healthy.stderr
    assert "lost nothing" in healthy.stdout and "what the WAL lost is lost" not in healthy.stdout
    assert "wal_loss_accepted" not in healthy.stderr, healthy.stderr
    assert not list(state.glob("*.kept-*"))


async def test_accept_wal_loss_after_a_kill_with_the_wal_whole_takes_nothing_as_lost(tmp_path: Path) -> None:
    config, smtp_port, _ = await crashed_state(tmp_path)
    res = smsgw(config, "accept-wal-loss")
    assert res.returncode == 0 and "lost nothing" in res.stdout, res.stdout + res.stderr
    assert "wal_loss_accepted" not in res.stderr
    await starts_with(config, smtp_port, ACCEPTED)


async def test_a_look_with_sqlite3_after_a_crash_does_not_stop_the_next_start(tmp_path: Path) -> None:
    # The sqlite3 shell (or a monitoring script) closing last checkpoints every frame and removes
    # the WAL and the -shm, as SQLite does: the start was refused as "missing" and the gateway stayed
    # down (exit 3) with nothing lost.
    config, smtp_port, _smsc_port = await crashed_state(tmp_path)
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn:
        assert conn.execute("SELECT count(*) FROM parts").fetchone()[0] >= MAILS
    assert not (tmp_path / "state" / "smsgw.db-wal").exists()
    out = await starts_with(config, smtp_port, ACCEPTED)
    assert "daemon.ready" in out


async def test_the_loss_accepted_keeps_what_the_wal_still_held_before_the_damage(tmp_path: Path) -> None:
    config, smtp_port, smsc_port = await crashed_state(tmp_path)
    wal = tmp_path / "state" / "smsgw.db-wal"
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    last = frames(wal) - 1  # the last frame: its commit is the only one dropped
    with wal.open("r+b") as f:
        f.seek(walfile.WAL_HEADER + (last - 1) * (walfile.FRAME_HEADER + page) + 30)
        f.write(os.urandom(200))
    refused(config, smsc_port, words="is damaged")
    accepted = smsgw(config, "accept-wal-loss")
    assert accepted.returncode == 0
    # It said "took 0 valid WAL frame(s)" whatever it took: the count came from the TRUNCATE checkpoint.
    took = re.search(r"took (\d+) valid WAL frame", accepted.stdout)
    assert took and 0 < int(took[1]) < last, accepted.stdout
    logged = (f"frames={took[1]}", f'"frames": {took[1]}')
    assert any(words in accepted.stderr for words in logged), accepted.stderr
    held = [t for t in texts(tmp_path / "state" / "smsgw.db") if t in ACCEPTED]
    assert held in (ACCEPTED, ACCEPTED[: MAILS - 1])  # only the commits from the damaged frame on are gone
    await starts_with(config, smtp_port, held)
