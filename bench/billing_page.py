"""The panel's billing and premium pages for the month still open: the first load and the next ones.

Generates the month so far (from its first day to now, in the installation's zone): `--sms` SMS over
`--accounts` accounts, `--premium` of them premium MOs with money for a service of each account (1 in
97 for no service), straight into a fresh store with `executemany`; writes the month's files as
`billing run` does before the month ends and marks each mailed with its checksum, as `--send`
records it, so that /billing compares every file with the one mailed. Then, in a fresh process per
page (no listing or figures remembered from before), logs the operator in to the panel over its ASGI
app and times GET /billing and GET /premium (this month's figures): the first load, then two more.

A page's first load is the one that reads the month: /billing stats the month's files and reads each
file's end and the summary's bytes; /premium groups the month's votes on the reader's connection
(`premium.stats.grouped`, covering index premium_mo_month, a sort for the GROUP BY). Later loads
find the listing and the figures remembered.

Usage: python bench/billing_page.py [--sms 200000] [--accounts 50] [--premium 4000] [--dir DIR]
It is a benchmark, not a test: it asserts nothing and only prints.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acl.lockout import AuthGuard  # noqa: E402
from acl.passwords import hash_password  # noqa: E402
from billing_reports.monthly import Month  # noqa: E402
from billing_reports.repo import mailed_key  # noqa: E402
from billing_reports.writer import write_month  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.web.app import WebContext, build_app  # noqa: E402

TZ = ZoneInfo("Europe/Warsaw")
OPERATOR, PASSWORD, HOST = "op@gw.example", "correct horse 1", "panel.bench"
STATES = ["delivered"] * 90 + ["failed"] * 5 + ["expired"] * 2 + ["submitted"] * 2 + ["cancelled"]
PRICES = {"7155": (100, 50), "7355": (300, 150), "7955": (900, 450)}  # grosze: price, commission


def build(base: Path, sms: int, accounts: int, premium: int) -> Month:
    """The month so far in a fresh store, its files written and marked mailed; the month."""
    path = base / "smsgw.db"
    store = Store.open(path)
    month = Month.containing(store.clock(), TZ)
    start, now = month.bounds(TZ)[0], store.clock()
    conn = store.db.conn
    with store.db.transaction():
        conn.executemany(
            "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)",
            [(a, f"account{a:02d}", start - 86400) for a in range(1, accounts + 1)],
        )
        conn.executemany(
            "INSERT INTO premium_services (id, password, account_id, email, verified_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (a, f"KP{a:03d}", a, f"votes@account{a:02d}.example", start, start)
                for a in range(1, accounts + 1)
            ],
        )
        rnd = random.Random(12)
        step = (now - start) / sms
        every = max(1, sms // premium) if premium else sms + 1
        emails, messages, votes = [], [], []
        for i in range(1, sms + 1):
            ts = start + (i - 1) * step
            a = rnd.randint(1, accounts)
            if i % every == 0:
                number = rnd.choice(list(PRICES))
                service = None if i % 97 == 0 else a
                price, commission = PRICES[number]
                votes.append((i, i, number, f"+4860{i:07d}", service, service, f"KP{a:03d}", 1, price,
                              commission, "", "mailed", ts))  # fmt: skip
            else:
                state = rnd.choice(STATES)
                emails.append((i, a, f"user{rnd.randint(1, 5)}@account{a:02d}.example", "x", ts))
                reason = "rejected by the SMSC" if state == "failed" else None
                messages.append((i, i, a, f"+4860{i:07d}", "+48100200300", "x", 0, rnd.randint(1, 3), state,
                                 reason, ts, ts + 86400))  # fmt: skip
        conn.executemany(
            "INSERT INTO emails (id, account_id, mail_from, text, received_at) VALUES (?,?,?,?,?)", emails
        )
        conn.executemany(
            "INSERT INTO messages (id, email_id, account_id, recipient, source, text, coding, parts_total,"
            " state, reason, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            messages,
        )
        conn.executemany(
            "INSERT INTO premium_mo (id, mo_id, number, phone, service_id, account_id, password, parts,"
            " price, commission, text, state, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            votes,
        )
    store.accounts.add_user(OPERATOR, "account01", password_hash=hash_password(PASSWORD))
    store.accounts.set_user(OPERATOR, role="operator")
    files = write_month(path, base, month, TZ)
    marks = [(mailed_key(month, f.account_id), f"{f.sha256} {now:.0f}") for f in files.accounts]
    if files.summary is not None:
        marks.append(
            (
                mailed_key(month, "summary"),
                f"{hashlib.sha256(files.summary.read_bytes()).hexdigest()} {now:.0f}",
            )
        )
    with store.db.transaction():
        conn.executemany("INSERT INTO billing_state (key, value) VALUES (?, ?)", marks)
    store.close()
    return month


async def _loads(base: Path, url: str, times: int) -> list[tuple[float, float, int]]:
    """`url` loaded `times` times by the operator: (wall s, this process's CPU s, bytes) each."""
    store = Store.open(base / "smsgw.db")
    store.db.serve()
    cfg = parse_config(
        f'[gateway]\ndomains = ["sms.example.com"]\ntimezone = "{TZ.key}"\nstate_dir = "{base}"\n'
        f'[web]\nenabled = true\nhostnames = ["{HOST}"]\n',
        source="bench",
        base_dir=base,
        links_required=False,
    )
    web = WebContext(cfg, store, AuthGuard(3, 300))
    transport = httpx.ASGITransport(app=build_app(web), client=("127.0.0.1", 40000))
    got = []
    try:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as c:
            form = (await c.get("/login")).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None, "no login form"
            r = await c.post("/login", data={"email": OPERATOR, "password": PASSWORD, "csrf": csrf.group(1)})
            assert r.status_code == 303, r.text
            for _ in range(times):
                t0, c0 = time.perf_counter(), time.process_time()
                r = await c.get(url)
                r.raise_for_status()
                got.append((time.perf_counter() - t0, time.process_time() - c0, len(r.content)))
    finally:
        web.counts.close()
        store.close()
    return got


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sms", type=int, default=200_000)
    p.add_argument("--accounts", type=int, default=50)
    p.add_argument("--premium", type=int, default=4_000, help="premium MOs among --sms (default: 2 %%)")
    p.add_argument("--dir", type=Path, help="keep the store and files here (default: a temporary directory)")
    p.add_argument("--load", nargs=2, metavar=("DIR", "URL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.load:
        base, url = Path(args.load[0]), args.load[1]
        for i, (wall, cpu, size) in enumerate(asyncio.run(_loads(base, url, 3))):
            print(f"  {url} load {i + 1}: {wall * 1000:7.1f} ms ({cpu * 1000:.0f} ms CPU), {size:,} bytes")
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        for old in base.glob("smsgw.db*"):
            old.unlink()
        t0 = time.perf_counter()
        month = build(base, args.sms, args.accounts, args.premium)
        print(
            f"{month} so far: {args.sms:,} SMS ({args.premium:,} premium) over {args.accounts} accounts,"
            f" generated and billed in {time.perf_counter() - t0:.1f} s"
        )
        for url in ("/billing", "/premium"):
            subprocess.run([sys.executable, __file__, "--load", str(base), url], check=True)


if __name__ == "__main__":
    main()
