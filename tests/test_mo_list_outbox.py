"""`smsgw mo list` says an answer is mailed only once the mail relay took its mail (R-3).

An MO is recorded `mailed` when its answer mail is queued. A relay that answers `451 4.3.0` defers
that mail, for days if the mailbox server is down, while `mo list` said "mailed → anna@…" all along
and the operator asked in vain why the user had nothing. The line now tells the outbox's truth:
queued, the relay's words and the next try; "mailed" once the relay has taken it. The MO's own
state is unchanged. Real peers: SMTP into the daemon, the built-in simulator over SMPP, the daemon's
outbox worker against a real SMTP relay that defers, `smsgw` run as its own process on the same
SQLite file while the daemon runs.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.conftest import STAFF, Sink, config_text, free_port, running_gateway, smtp_sink
from tests.test_reply_refused import sms_and_answer
from tests.test_two_way import two_way_config

ROOT = Path(__file__).resolve().parent.parent
DEFERRED = "451 4.3.0 Mailbox server busy, try later"


class DeferringRelay(Sink):
    """The company relay while its mailbox server is away: RCPT of anyone is deferred with a 451
    until `deferring` is cleared."""

    def __init__(self) -> None:
        super().__init__()
        self.deferring = True

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.deferring:
            return DEFERRED
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


def smsgw(tmp_path: Path, *args: str) -> str:
    """The command as an operator runs it, beside the running daemon (its own process)."""
    path = tmp_path / "cli.toml"
    if not path.exists():
        path.write_text(config_text(tmp_path, smsc_port=free_port()))  # the daemon's state_dir
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "-c", str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def reply_mail(gw: Any) -> tuple[int, str, str | None]:
    return gw.store.db.conn.execute(
        "SELECT id, state, last_error FROM outbox WHERE kind = 'reply' ORDER BY id"
    ).fetchone() or (0, "", None)


async def test_mo_list_shows_an_answer_whose_mail_the_relay_defers_as_queued(tmp_path: Path) -> None:
    port = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=port)
    async with smtp_sink(port, DeferringRelay()) as relay, running_gateway(cfg) as gw:
        await sms_and_answer(gw)
        await gw.until(lambda: reply_mail(gw)[2] is not None)  # the relay said 451 once
        mail_id, state, _ = reply_mail(gw)
        assert state == "queued" and relay.messages == []
        [line] = (await asyncio.to_thread(smsgw, tmp_path, "mo", "list")).splitlines()[-1:]
        assert "mailed" not in line, line
        said = re.escape(f"queued     → {STAFF}  (its mail to {STAFF} is not taken by the mail relay yet,")
        assert re.search(
            said + r" the last try: 451 4\.3\.0 Mailbox server busy, try later;"
            r" next try \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$",
            line,
        ), line
        # The MO's own record is what it was: the handler's work is done, the mail is the outbox's.
        assert gw.store.db.conn.execute("SELECT state FROM mo").fetchall() == [("mailed",)]
        # The mailbox server is back; the operator sends the mail now rather than at its next try.
        relay.deferring = False
        await asyncio.to_thread(smsgw, tmp_path, "outbox", "retry", str(mail_id))
        gw.store.outbox.on_queued()  # the CLI's write is the daemon's to find within seconds: now
        await relay.wait(1)
        await gw.until(lambda: reply_mail(gw)[1] == "sent")
        [line] = (await asyncio.to_thread(smsgw, tmp_path, "mo", "list")).splitlines()[-1:]
        assert line.endswith(f" mailed     → {STAFF}"), line


def test_mo_list_reads_each_mos_mail_in_its_one_query(tmp_path: Path) -> None:
    """No query per MO: the latest mail of each comes in the list's own read, through the outbox's
    `mo_ref` index (a year's outbox is hundreds of thousands of rows)."""
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        ids = [
            store.mo.record_mo("main", f"+4860110{i:04d}", "48100200300", f"answer {i}", 0, None)
            for i in range(60)
        ]
        with store.db.transaction():
            for n, mo_id in enumerate(ids):  # two mails for the newest: the refused one, the copy
                for state in ("failed", "queued") if n >= 55 else ("sent",):
                    conn.execute(
                        "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at,"
                        " created_at, mo_ref, last_error) VALUES ('reply', '', ?, x'00', ?, 100, 1, ?, ?)",
                        (f"u{n}@acme.example", state, mo_id, DEFERRED if state == "queued" else None),
                    )
        conn.execute("ANALYZE")
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        rows = ConversationsRepo(store.db, store.clock).list_mo(since=None, numbers=None, limit=50)
        conn.set_trace_callback(None)
        [query] = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        plan = " ".join(r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
    finally:
        store.close()
    assert "outbox_mo_ref" in plan, plan
    by_mo = {r["id"]: (r["mail_state"], r["mail_to"], r["mail_error"]) for r in rows}
    assert len(rows) == 50
    assert by_mo[ids[-1]] == ("queued", "u59@acme.example", DEFERRED)  # the latest of its two
    assert by_mo[ids[10]] == ("sent", "u10@acme.example", None)
