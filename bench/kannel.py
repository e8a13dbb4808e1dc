"""Side by side with Kannel: the same SMPP simulator, the same message count and concurrency, and the
ratio smsgw/Kannel printed by one run of this script.

Kannel (Debian package `kannel`: /usr/sbin/bearerbox and /usr/sbin/smsbox) runs from a config
generated in a temporary directory: smsbox's HTTP sendsms → bearerbox → one SMPP transceiver bind
(window `max-pending-submits` = smsgw's window, 100) → the built-in simulator, started as its own
process exactly as bench/e2e.py starts it (`smsgw simulator run`, DLRs without delay, jsonl log).
N single-part messages are sent over M concurrent keep-alive HTTP connections (http.client in
threads), each with dlr-mask 3 and a dlr-url to a small local HTTP listener, so that the delivery
reports are part of the work. Timed as e2e.py times smsgw: first request → last SMS logged by the
simulator; CPU is bearerbox + smsbox (user + sys from /proc) until the last delivery report reached
the listener, per message.

Then smsgw's figure comes from e2e.py's `throughput` (SMTP → daemon → the same simulator), and the
ratio smsgw/Kannel is printed. With `--rounds R` the two alternate R times (so that machine noise
hits both) and the medians are compared.

Usage: python bench/kannel.py [--messages 5000] [--connections 8] [--rounds 1]
                              [--log-level INFO] [--kannel-log-level 1]
It is a benchmark, not a test: it asserts nothing and only prints. Loopback only; every process it
starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import e2e  # noqa: E402
from tests.fakes.kannel import BEARERBOX, SMSBOX, _established, _listening, smsc_group  # noqa: E402

TEXT = "Benchmark message number {i}. The meeting is moved to 10:00, room 4."  # e2e.py's body
WINDOW = 100  # e2e.py's [[smsc]] window


def kannel_config(directory: Path, smpp: int, dlr_port: int, log_level: int) -> tuple[Path, int, int]:
    """kannel.conf: (its path, bearerbox's smsbox port, smsbox's sendsms port). As the interop
    tests' config (tests/fakes/kannel.py), but with the log level chosen and smsgw's window."""
    admin, box, sendsms = e2e.free_port(), e2e.free_port(), e2e.free_port()
    conf = directory / "kannel.conf"
    conf.write_text(
        f"group = core\nadmin-port = {admin}\nadmin-password = admin\nadmin-interface = 127.0.0.1\n"
        f"smsbox-port = {box}\nsmsbox-interface = 127.0.0.1\nbox-allow-ip = 127.0.0.1\n"
        f'log-file = "{directory / "bearerbox.log"}"\nlog-level = {log_level}\n'
        f'store-type = file\nstore-location = "{directory / "kannel.store"}"\n'
        f"dlr-storage = internal\nsms-resend-freq = 1\n\n"
        f"{smsc_group('trx', smpp)}max-pending-submits = {WINDOW}\n\n"
        f"group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {box}\n"
        f"sendsms-port = {sendsms}\nsendsms-interface = 127.0.0.1\n"
        f'log-file = "{directory / "smsbox.log"}"\nlog-level = {log_level}\nmo-recode = false\n\n'
        f"group = sendsms-user\nusername = tester\npassword = pw\nmax-messages = 1\n\n"
        f"group = sms-service\nkeyword = default\ncatch-all = true\nmax-messages = 0\n"
        f'get-url = "http://127.0.0.1:{dlr_port}/mo?from=%p"\n'
    )
    return conf, box, sendsms


class DlrListener:
    """Answers every request with an empty 200 (keep-alive) and counts the /dlr ones."""

    def __init__(self) -> None:
        self.dlrs = 0
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.split(b" ", 2)[1].startswith(b"/dlr"):
                    self.dlrs += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


def send_all(port: int, paths: list[str], errors: list[str]) -> None:
    """One keep-alive HTTP connection sending `paths` one after the other (a thread's work)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for path in paths:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status // 100 != 2:
                errors.append(f"{resp.status} {body[:100]!r}")
    except OSError as exc:
        errors.append(repr(exc))
    finally:
        conn.close()


def sendsms_path(i: int, dlr_port: int) -> str:
    query = urllib.parse.urlencode(
        {
            "username": "tester",
            "password": "pw",
            "charset": "UTF-8",
            "from": "+48100200300",
            "to": e2e.number(i).split("@")[0],
            "text": TEXT.format(i=i),
            "dlr-mask": "3",
            "dlr-url": f"http://127.0.0.1:{dlr_port}/dlr?id={i}&type=%d",
        }
    )
    return f"/cgi-bin/sendsms?{query}"


async def wait_for(check, what: str, within: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + within
    while not check():
        if time.perf_counter() > deadline:
            raise SystemExit(f"Kannel benchmark: {what} did not happen within {within:.0f} s")
        await asyncio.sleep(0.05)


async def kannel_throughput(n: int, conns: int, log_level: int) -> tuple[float, float]:
    """Prints Kannel's run; returns (SMS/s end to end, bearerbox + smsbox CPU ms per message)."""
    listener = DlrListener()
    server = await asyncio.start_server(listener.serve, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp)
            smpp = e2e.free_port()
            cfg = state / "config.toml"
            cfg.write_text(e2e.config(state, e2e.free_port(), smpp))
            procs.append(await e2e.spawn(cfg, ["simulator", "run"], smpp))
            kdir = state / "kannel"
            kdir.mkdir()
            conf, box, sendsms = kannel_config(kdir, smpp, listener.port, log_level)
            for binary in (BEARERBOX, SMSBOX):
                procs.append(
                    subprocess.Popen(
                        [str(binary), str(conf)],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                if binary is BEARERBOX:
                    await wait_for(lambda: _listening(box), "bearerbox listening")
            await wait_for(
                lambda: _established(box) and _listening(sendsms) and _established(smpp),
                "smsbox connected and the SMPP bind up",
            )
            await asyncio.sleep(1.0)  # the bind's answer, as e2e.py's settle
            kannel_pids = [p.pid for p in procs[1:]]

            paths = [sendsms_path(i, listener.port) for i in range(n)]
            errors: list[str] = []
            log = state / "simulator.jsonl"
            cpu0 = sum(e2e.cpu_seconds(pid) for pid in kannel_pids)
            own0 = time.process_time()
            t0 = time.perf_counter()
            threads = [
                threading.Thread(target=send_all, args=(sendsms, paths[k::conns], errors), daemon=True)
                for k in range(conns)
            ]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                await asyncio.sleep(0.01)
            accepted = time.perf_counter() - t0
            deadline = time.perf_counter() + 300
            while e2e.count_lines(log) < n and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            done = time.perf_counter() - t0
            sent = e2e.count_lines(log)
            deadline = time.perf_counter() + 60
            while listener.dlrs < sent and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            dlr_done = time.perf_counter() - t0
            cpu = sum(e2e.cpu_seconds(pid) for pid in kannel_pids) - cpu0
            own = time.process_time() - own0
            rss = sum(e2e.rss_mb(pid)[0] for pid in kannel_pids)
            print(f"Kannel: {n} sendsms over {conns} HTTP connections, dlr-mask 3, log-level {log_level}")
            print(f"  accepted  {n / accepted:8.0f} requests/s  ({accepted:.2f} s, {len(errors)} errors)")
            if errors:
                print(f"    first error: {errors[0]}")
            print(f"  submitted {sent / done:8.0f} SMS/s end to end  ({sent} SMS in {done:.2f} s)")
            print(f"  DLRs at the dlr-url: {listener.dlrs} (last at {dlr_done:.2f} s)")
            print(f"  Kannel CPU {1000 * cpu / n:.2f} ms per SMS+DLR (bearerbox + smsbox, user+sys)")
            print(f"  load generator + DLR listener CPU {1000 * own / n:.2f} ms per SMS (this process)")
            print(f"  Kannel RSS {rss:.0f} MB (bearerbox + smsbox)")
            for proc in reversed(procs):
                stop(proc)
            return sent / done, 1000 * cpu / n
    finally:
        for proc in reversed(procs):
            stop(proc)
        server.close()
        await server.wait_closed()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1, help="alternating Kannel/smsgw runs (medians)")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"], help="smsgw's")
    ap.add_argument("--kannel-log-level", type=int, default=1, choices=range(5), help="0 debug … 4 panic")
    ap.add_argument(
        "--intake-processes", type=int, default=0, help="smsgw's [smtp] intake_processes (default 0)"
    )
    ap.add_argument("--pipelining", action="store_true", help="smsgw's client pipelines, as mail servers do")
    args = ap.parse_args()
    e2e.INTAKE_PROCESSES = args.intake_processes
    missing = [str(p) for p in (BEARERBOX, SMSBOX) if not p.exists() or not shutil.which(str(p))]
    if missing:
        print(f"{', '.join(missing)} not installed (Debian package kannel): nothing to compare")
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    kannel: list[tuple[float, float]] = []
    smsgw: list[tuple[float, float]] = []
    for r in range(args.rounds):
        runs = [
            ("kannel", lambda: kannel_throughput(args.messages, args.connections, args.kannel_log_level)),
            (
                "smsgw",
                lambda: e2e.throughput(args.messages, args.connections, args.log_level, args.pipelining),
            ),
        ]
        for name, run in runs if r % 2 == 0 else runs[::-1]:
            (kannel if name == "kannel" else smsgw).append(await run())
    k_rate = statistics.median(x[0] for x in kannel)
    k_cpu = statistics.median(x[1] for x in kannel)
    s_rate = statistics.median(x[0] for x in smsgw)
    s_cpu = statistics.median(x[1] for x in smsgw)
    label = "median of " + str(args.rounds) if args.rounds > 1 else "one run each"
    print(f"side by side ({label}, {args.messages} single-part messages, {args.connections} connections):")
    how = f"log {args.log_level}, {args.intake_processes} intake process(es)" + (
        ", pipelining client" if args.pipelining else ""
    )
    print(f"  smsgw  {s_rate:8.0f} SMS/s, {s_cpu:.2f} ms CPU per message ({how})")
    print(f"  Kannel {k_rate:8.0f} SMS/s, {k_cpu:.2f} ms CPU per message (log-level {args.kannel_log_level})")
    with contextlib.suppress(ZeroDivisionError):
        ratio, cpu_x = s_rate / k_rate, s_cpu / k_cpu
        print(f"  ratio smsgw/Kannel: {ratio:.2f} (throughput); smsgw spends ×{cpu_x:.1f} CPU per message")
        print(f"  a ratio of 0.5 would take {0.5 * k_rate:.0f} SMS/s from smsgw")


if __name__ == "__main__":
    e2e.loop_runner()(main())
