"""SQLite VM instructions of one scan of the SMS to a phone (`gateway.conversations.reached.messages_to`),
with and without the look at each SMS's parts that says whether a submit is unanswered (`in_flight`).

Only the answer wait reads that (`reached.unanswered`); a conversation's state, the pool's look at who
holds a number and a mail's quote scan without it. A store in a temporary directory gets SMS of
`--parts` parts each to one phone from one user, half of them claimed (in flight), and each scan is
counted by SQLite's progress handler, one call per VM instruction.

Usage: python bench/reached_scan.py [--sms 10,50,200] [--parts 2]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.conversations import reached  # noqa: E402
from gateway.smtp.accept import accept  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.store.records import Acceptance, NewMessage, NewPart  # noqa: E402

PHONE, USER = "+48601000001", "anna@acme.example"


def _acceptance(parts: int) -> Acceptance:
    message = NewMessage(
        PHONE, "+48100200300", "x" * parts, 0, [NewPart(i + 1, 0, b"x", b"", "x") for i in range(parts)],
        concatenated=parts > 1,
    )  # fmt: skip
    return Acceptance(USER, "127.0.0.1", None, None, "id@x", None, "", "x" * parts, [message], 3600)


def instructions(path: Path, in_flight: bool) -> int:
    conn = sqlite3.connect(path)
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    reached.messages_to(conn, PHONE, 0.0, float("inf"), [USER], in_flight=in_flight)  # prepared once
    conn.set_progress_handler(tick, 1)
    reached.messages_to(conn, PHONE, 0.0, float("inf"), [USER], in_flight=in_flight)
    conn.close()
    return count[0]


async def measure(sms: int, parts: int) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as directory:
        store = Store.open(Path(directory) / "db.sqlite")
        store.db.serve()
        for _ in range(sms):
            await accept(store, _acceptance(parts))
        await store.write(lambda: store.queue.claim_due(sms * parts // 2))
        path = store.db.path
        found = instructions(path, False), instructions(path, True)
        store.close()
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", default="10,50,200")
    parser.add_argument("--parts", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{'SMS':>5} {'without':>10} {'in_flight':>10}  (VM instructions a scan, {args.parts} parts an SMS)"
    )
    for sms in (int(n) for n in args.sms.split(",")):
        without, flying = asyncio.run(measure(sms, args.parts))
        print(f"{sms:>5} {without:>10} {flying:>10}")


if __name__ == "__main__":
    main()
