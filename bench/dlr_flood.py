"""Receipt flood benchmark: does an SMTP client wait behind a flood of delivery receipts?

Runs the daemon as a process of its own on a temporary state directory, with an SMPP SMSC (the
simulator's server, in this process) that sends `--receipts` deliver_sm receipts in one burst as
soon as the gateway has bound, the way an SMSC empties its backlog after a reconnect. While the
gateway absorbs them, one SMTP client connects and sends one mail. Printed:
- how long the gateway took to acknowledge every receipt;
- the client's wait for the greeting, and from the end of DATA to the `250`, during the flood.

Usage: python bench/dlr_flood.py [--receipts 20000]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config import SimulatorSection  # noqa: E402
from smsc.base import ReportStatus  # noqa: E402
from smsc.simulator.core import SimulatorCore  # noqa: E402
from smsc.simulator.smpp_server import SmppServer  # noqa: E402

SENDER = "bench@acme.example"
RCPT = "+48601000001@sms.example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(state: Path, smtp: int, smpp: int) -> str:
    return f"""
[gateway]
domains = ["sms.example.com"]
state_dir = "{state}"

[smtp]
listen = "127.0.0.1:{smtp}"
submission_listen = "127.0.0.1:0"

[mail]
relay = "127.0.0.1:{free_port()}"

[[smsc]]
name = "sim"
type = "smpp"
port = {smpp}
system_id = "smsgw"
password = "secret"
window = 100
max_per_second = 100000

[simulator]
enabled = false

[[account]]
name = "bench"
relay_networks = ["127.0.0.0/8"]
users = ["{SENDER}"]
"""


# The client runs in a process of its own, so that the SMSC's work in this one does not slow it.
CLIENT = """
import smtplib, sys, time
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
start = time.monotonic()
with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
    greeted = time.monotonic() - start
    client.ehlo("bench.example")
    client.mail(sender)
    client.rcpt(rcpt)
    body = f"From: {sender}\\r\\nTo: {rcpt}\\r\\nSubject: During the flood\\r\\n\\r\\nHello.\\r\\n"
    sent = time.monotonic()
    code, _ = client.data(body.encode())
    print(greeted, time.monotonic() - sent, code)
"""


def smtp_during_flood(port: int) -> tuple[float, float]:
    """Seconds to the greeting, and from the end of DATA to the answer, for one mail."""
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port), SENDER, RCPT], capture_output=True, text=True, timeout=300
    )
    greeted, accepted, code = out.stdout.split()
    if code != "250":
        print(f"  mail answered {code}")
    return float(greeted), float(accepted)


async def main(receipts: int) -> None:
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), Path(os.devnull))
    server = SmppServer(core, "127.0.0.1", 0, resend_timeout=300.0)
    await server.start()
    smtp = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(config(Path(tmp) / "state", smtp, server.port))
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(cfg), "run", "--log-level", "WARNING"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await server.wait_until(lambda: any(s.mode for s in server.sessions), timeout=30)
            session = next(s for s in server.sessions if s.mode)
            now = datetime.now(UTC)
            start = time.monotonic()
            for i in range(receipts):  # unknown ids: stored as unmatched, the costliest path
                await session.send_report(
                    f"flood-{i}", "+48100200300", "+48601000001", ReportStatus.DELIVERED, now
                )
            client = asyncio.create_task(asyncio.to_thread(smtp_during_flood, smtp))
            await server.wait_until(lambda: server.stats.deliver_answered >= receipts, timeout=600)
            absorbed = time.monotonic() - start
            greeted, accepted = await client
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            await server.stop()
            await core.close()
    print(f"receipts: {receipts} acknowledged in {absorbed:.2f} s ({receipts / absorbed:,.0f}/s)")
    print(f"SMTP during the flood: greeting after {greeted * 1000:.0f} ms,", end=" ")
    print(f"end of DATA to 250 {accepted * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().receipts))
