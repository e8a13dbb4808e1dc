"""A store prepared for billing before the daemon starts, and the billing mails a sink received."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway.config import parse_config
from gateway.store.db import Store
from tests.conftest import Sink, config_text, free_port

TZ = ZoneInfo("Europe/Warsaw")
ROOT = Path(__file__).resolve().parents[1]


def at(*args: int) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()  # type: ignore[misc]


def prepare(
    tmp_path: Path,
    relay: int,
    *,
    last_billed: str | None,
    traffic: dict[str, Iterable[float]],
    reason: str | None = None,
) -> tuple[Path, Any]:
    """A config mailing to `relay` and a store whose accounts (made in January 2026, each with
    `billing@<name>.pl`) sent one SMS at each of their times; billing recorded up to `last_billed`."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port(), relay_port=relay))
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 1, 5))
    try:
        for name, times in traffic.items():
            account_id = store.accounts.add_account(name).id
            store.accounts.set_billing_addresses(name, [f"billing@{name}.pl"])
            fill(store, account_id, times, reason)
        if last_billed is not None:
            BillingRepo(store.db, store.clock).put(LAST_BILLED, last_billed)
    finally:
        store.close()
    return path, cfg


def fill(store: Store, account_id: int, times: Iterable[float], reason: str | None = None) -> None:
    """One email and an SMS per time (delivered, or failed for `reason`): many rows in one transaction."""
    conn = store.db.conn
    state = "delivered" if reason is None else "failed"
    with store.db.transaction():
        email = conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?,?,?,?)",
            (account_id, "anna@acme.example", "x", at(2026, 1, 5)),
        ).lastrowid
        conn.executemany(
            "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total, state,"
            " reason, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                (email, account_id, f"+48601{i:06d}", "+48100200300", "x", 0, 1, state, reason, ts, ts)
                for i, ts in enumerate(times)
            ),
        )


def last_billed(store: Any) -> str | None:
    return BillingRepo(store.db, store.clock).get(LAST_BILLED)


class BillingMail(NamedTuple):
    rcpt: str
    subject: str
    filename: str
    attachment: bytes


def billing_mails(sink: Sink) -> list[BillingMail]:
    found = []
    for _, rcpts, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if str(msg["Subject"]).startswith("SMS billing"):
            part = next(msg.iter_attachments())
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            found.append(BillingMail(rcpts[0], str(msg["Subject"]), str(part.get_filename()), data))
    return found


def outbox_rows(store: Any) -> int:
    return int(store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`smsgw` as the administrator runs it: another process, on the same state directory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "-c", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
