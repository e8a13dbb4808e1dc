"""The SMTP side's floor: what a mail costs the server before the gateway does anything with it.

`bench/e2e.py` prints the daemon's CPU per mail→SMS→DLR; this script splits off the part that
the stack itself fixes. It runs an SMTP server in a process of its own (uvloop, as the daemon) and
sends it N mails over M connections with e2e's load generator and e2e's mail, then prints the
server's CPU per mail for each of these servers:
- `aiosmtpd`: aiosmtpd's stock `SMTP` with a handler that answers 250 to everything;
- `protocol`: the relay's own protocol class (`GatewaySMTP`: the lean command loop, the plain
  address parser, the session guard) with the same do-nothing handler;
- `intake`: `protocol` whose DATA also reads the mail into SMS text (`read_mail`: MIME, charsets,
  cutting), as the relay does before it writes anything.
What the daemon spends beyond `intake` is its own work: ACL and limits, routing, the write and
its fsync, the SMPP submit, the DLR and the logging.

Usage: python bench/smtp_floor.py [--messages 8000] [--connections 8] [--kind aiosmtpd --kind …]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import cpu_seconds, free_port, listening, loop_runner, number, sender  # noqa: E402

KINDS = ("aiosmtpd", "protocol", "intake")


class Answer250:
    """A handler that accepts every command (RCPT must list the address, as aiosmtpd's default)."""

    def __init__(self, read: bool) -> None:
        self.read = read

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.read:
            from gateway.smtp.intake import read_mail

            read_mail(envelope.original_content)
        return "250 2.0.0 OK"


def serve(port: int, kind: str) -> None:
    """The server process: runs until killed."""
    from aiosmtpd.smtp import SMTP

    from gateway.smtp.servers import GatewaySMTP
    from gateway.smtp.sessionguard import SessionGuard

    async def main() -> None:
        handler = Answer250(read=kind == "intake")
        limit = 10_000_000

        def factory() -> SMTP:
            if kind == "aiosmtpd":
                return SMTP(handler, hostname="bench", data_size_limit=limit)
            return GatewaySMTP(handler, hostname="bench", data_size_limit=limit, guard=SessionGuard())

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    loop_runner()(main())


async def measure(kind: str, messages: int, connections: int) -> tuple[float, float]:
    """(mails/s, server CPU ms per mail) for one server kind."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), kind], cwd=ROOT)
    try:
        if not await listening(port, 10.0):
            raise SystemExit(f"the {kind} server did not start")
        jobs = [(i, [number(i)]) for i in range(messages)]
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        await asyncio.gather(*(sender(port, jobs[k::connections]) for k in range(connections)))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
        return messages / elapsed, 1000 * cpu / messages
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=8000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--kind", action="append", choices=KINDS, help="repeatable; default: all three")
    ap.add_argument("--serve", nargs=2, metavar=("PORT", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
        return
    print(f"{args.messages} mails over {args.connections} connections, server CPU (user+sys) per mail:")
    for kind in args.kind or KINDS:
        rate, ms = loop_runner()(measure(kind, args.messages, args.connections))
        print(f"  {kind:<9} {ms:.3f} ms  ({rate:,.0f} mails/s)")


if __name__ == "__main__":
    main()
