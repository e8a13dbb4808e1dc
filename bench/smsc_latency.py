"""A link against a distant SMSC: how much of the window's ceiling (window / round trip) one link keeps.

An SMSC is rarely on the same host: at 20 ms round trip a window of 10 allows at most 10 / 0.020 =
500 submits/s, and every moment a window place sits free after its answer came lowers that. This
script puts a delaying TCP proxy between the daemon and the built-in simulator and measures it:

1. the simulator (`smsgw simulator run`, DLRs without delay) and the daemon run as processes of their
   own, as in bench/e2e.py; the daemon's one `[[smsc]]` link (window `--window`, `max_per_second`
   far above the ceiling) points at the proxy, which runs in this process and holds every chunk
   `--delay-ms` in each direction (so the round trip is twice that);
2. N mails are accepted over SMTP while the proxy holds the link's connection unanswered (the bind is
   not forwarded yet), so they are all queued when the link binds;
3. the proxy is released; the rate is taken from the simulator's log, first submit → last submit,
   and compared with the ceiling. The daemon's CPU (user + sys) from the release until the last
   delivery report is in is printed per SMS.

The proxy's own cost is printed too (this process's CPU share while the link runs, and how late the
timers released chunks beyond the intended delay), so that one can see it does not distort the
figure: it should be far from a whole core and its lateness far below the delay.

Usage: python bench/smsc_latency.py [--messages 3000] [--window 10] [--delay-ms 10] [--rounds 1]
                                    [--protocol smpp|cimd2] [--log-level INFO] [--profile OUT]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import e2e  # noqa: E402


def config(state: Path, smtp: int, sim: int, proxy: int, protocol: str, window: int) -> str:
    """e2e.py's config with the link pointed at the proxy."""
    return e2e.config(
        state,
        smtp,
        sim,
        protocol=protocol,
        link_port=proxy,
        window=window,
        link_extra="response_timeout_seconds = 120\n",
    )


SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004


@dataclass
class Proxy:
    """Forwards TCP connections to `upstream`, holding each chunk `delay` seconds in each direction.

    Connections wait for `release` before the upstream connection is opened. Threads, not the event
    loop, do the holding: an event loop's timers are good to a millisecond at best (uvloop's even
    fire up to a millisecond early), which at a 20 ms round trip would move the figure by 5 %;
    `time.sleep` holds to a few tens of microseconds, and never less than `delay`. Each direction
    has a reader (stamps and queues the chunks) and a writer (sends each when it is due), so the
    chunks stay in order. For SMPP it also reads the PDU headers, to time each submit from the
    moment the daemon wrote it to the moment its answer was handed back (the part of a window
    place's cycle spent beyond the daemon) and the simulator's own share of that."""

    upstream: int
    delay: float
    smpp: bool = True
    release: threading.Event = field(default_factory=threading.Event)
    lateness: list[float] = field(default_factory=list)  # seconds past each chunk's due time
    # submit_sm sequence number -> [read from daemon, written upstream, answer read, answer written]
    stamps: dict[int, list[float]] = field(default_factory=dict)

    def listen(self, port: int) -> socket.socket:
        listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:  # closed: the run is over
                return
            threading.Thread(target=self._serve, args=(down,), daemon=True).start()

    def _serve(self, down: socket.socket) -> None:
        self.release.wait()
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            down.close()
            return
        for sock in (down, up):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pipe(down, up, SUBMIT_SM, 0)
        self._pipe(up, down, SUBMIT_SM_RESP, 2)

    def _pipe(self, src: socket.socket, dst: socket.socket, command: int, stamp: int) -> None:
        held: deque[tuple[float, bytes | None, list[int]]] = deque()
        ready = threading.Condition()

        def read() -> None:
            buf = bytearray()
            while True:
                try:
                    chunk: bytes | None = src.recv(65536) or None
                except OSError:
                    chunk = None
                now = time.monotonic()
                seqs = []
                if chunk is not None and self.smpp:
                    buf.extend(chunk)
                    while len(buf) >= 16:
                        length, command_id, _status, seq = struct.unpack_from(">IIII", buf)
                        if len(buf) < length:
                            break
                        del buf[:length]
                        if command_id == command:
                            seqs.append(seq)
                            self.stamps.setdefault(seq, [0.0] * 4)[stamp] = now
                with ready:
                    held.append((now + self.delay, chunk, seqs))
                    ready.notify()
                if chunk is None:
                    return

        def write() -> None:
            while True:
                with ready:
                    while not held:
                        ready.wait()
                    due, chunk, seqs = held[0]
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                    continue
                with ready:
                    held.popleft()
                now = time.monotonic()
                self.lateness.append(now - due)
                if chunk is None:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                    return
                try:
                    dst.sendall(chunk)
                except OSError:
                    return
                for seq in seqs:
                    self.stamps.setdefault(seq, [0.0] * 4)[stamp + 1] = now

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def turnarounds(self) -> list[float]:
        """For each answer handed to the daemon, seconds until the daemon's next submit reached
        the proxy: how fast a freed window place is filled again (sorted)."""
        answers = sorted(s[3] for s in self.stamps.values() if s[3])
        submits = sorted(s[0] for s in self.stamps.values() if s[0])
        out = []
        for t in answers:
            i = bisect.bisect_left(submits, t)
            if i < len(submits):
                out.append(submits[i] - t)
        return sorted(out)

    def beyond(self) -> tuple[float, float] | None:
        """Mean seconds per submit from the daemon's write to its answer's delivery, and the
        simulator's share of it (upstream write → answer read); None without SMPP stamps."""
        done = [s for s in self.stamps.values() if all(s)]
        if not done:
            return None
        return statistics.fmean(s[3] - s[0] for s in done), statistics.fmean(s[2] - s[1] for s in done)


def submit_times(log: Path) -> list[float]:
    out = []
    with log.open() as f:
        for line in f:
            out.append(datetime.fromisoformat(json.loads(line)["ts"]).timestamp())
    return out


async def run(args: argparse.Namespace) -> tuple[float, float]:
    """One round: prints its figures, returns (SMS/s, daemon CPU ms per SMS)."""
    n, window, delay = args.messages, args.window, args.delay_ms / 1000
    ceiling = window / (2 * delay) if delay else float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        smtp, sim, proxy_port = e2e.free_port(), e2e.free_port(), e2e.free_port()
        cfg = state / "config.toml"
        cfg.write_text(config(state, smtp, sim, proxy_port, args.protocol, window))
        proxy = Proxy(sim, delay, smpp=args.protocol == "smpp")
        listener = proxy.listen(proxy_port)
        procs = [await e2e.spawn(cfg, ["simulator", "run"], sim)]
        try:
            procs.append(await e2e.spawn(cfg, ["run"], smtp, log_level=args.log_level))
            daemon = procs[-1]
            jobs = [(i, [e2e.number(i)]) for i in range(n)]
            await asyncio.gather(*(e2e.sender(smtp, jobs[k::8]) for k in range(8)))
            log = state / "simulator.jsonl"
            cpu0, own0, t0 = e2e.cpu_seconds(daemon.pid), time.process_time(), time.perf_counter()
            proxy.release.set()
            spy = None
            if args.profile:  # the daemon while the link runs, as py-spy's raw (collapsed) stacks
                seconds = max(2, int(n / min(ceiling, 500) * 0.8))
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(daemon.pid), "--duration", str(seconds), "--rate",
                     "250", "--format", "raw", "--nonblocking", "--output", args.profile],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            deadline = t0 + 60 + 10 * n / min(ceiling, 500)
            while e2e.count_lines(log) < n and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
            running = time.perf_counter() - t0
            own = time.process_time() - own0
            await asyncio.sleep(1)  # the last delivery reports
            cpu = e2e.cpu_seconds(daemon.pid) - cpu0
            if spy is not None:
                spy.wait(60)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(30)
            listener.close()
        times = submit_times(log)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    late = sorted(proxy.lateness) or [0.0]
    print(f"{args.protocol} link, window {window}, {args.delay_ms:g} ms each way "
          f"(ceiling {ceiling:.0f}/s), {n} SMS queued, daemon logging at {args.log_level}")  # fmt: skip
    share = f"= {100 * rate / ceiling:5.1f} % of the ceiling " if delay else ""
    print(f"  submitted {rate:8.0f} SMS/s  {share}"
          f"({len(times)} SMS, first → last submit)")  # fmt: skip
    beyond = proxy.beyond()
    if beyond and rate:
        # A window place cycles every window / rate seconds: the part of it the proxy did not see
        # the submit (daemon's write → answer handed back) is the daemon's, wake-ups included.
        out, smsc = beyond
        cycle = window / rate
        print(f"  a window place cycles in {1000 * cycle:.1f} ms: {1000 * out:.1f} ms beyond the daemon "
              f"(simulator {1000 * smsc:.1f} ms), {1000 * (cycle - out):.1f} ms in the daemon")  # fmt: skip
        # What the daemon made of the time the network and the SMSC left it: 100 % = never idle.
        print(f"  = {100 * out / cycle:.1f} % of what proxy and simulator allowed ({window / out:.0f}/s)")
        turns = proxy.turnarounds()
        if turns:
            p50, p90, p99 = (1000 * turns[int(len(turns) * q)] for q in (0.5, 0.9, 0.99))
            print(f"  answer in → next submit out: p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms")
    print(f"  daemon CPU {1000 * cpu / n:.2f} ms per SMS (submit + answer + DLR, user+sys)")
    print(f"  proxy: {100 * own / running:.0f} % of a core; chunks late by p50 "
          f"{1000 * statistics.median(late):.2f} ms, p99 {1000 * late[int(len(late) * 0.99)]:.2f} ms "
          f"({len(late)} chunks)")  # fmt: skip
    return rate, 1000 * cpu / n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--delay-ms", type=float, default=10.0, help="added in each direction")
    ap.add_argument("--protocol", choices=["smpp", "cimd2"], default="smpp")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING"], default="INFO")
    ap.add_argument("--profile", metavar="OUT", help="py-spy the daemon while the link runs (raw stacks)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    results = [await run(args) for _ in range(args.rounds)]
    if args.rounds > 1:
        rates = [r for r, _ in results]
        ceiling = args.window / (2 * args.delay_ms / 1000)
        print(f"median of {args.rounds}: {statistics.median(rates):.0f} SMS/s = "
              f"{100 * statistics.median(rates) / ceiling:.1f} % of the ceiling; daemon CPU "
              f"{statistics.median(c for _, c in results):.2f} ms per SMS")  # fmt: skip


if __name__ == "__main__":
    e2e.loop_runner()(main())
