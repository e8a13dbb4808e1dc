"""The domains the gateway served, kept in the store's key/value table so that a start reads the
conversations only when a domain was dropped; a removed premium service's confirmation address; what
check-config says of the dropped domain's conversations. A real SQLite file, the relay port, the CLI
as processes.

Each start read the whole conversations table (no index on its domain) three times, 55 to 270 ms each
on 500,000 conversations, though no domain had changed; a removed service's `confirm-…` address on
the dropped domain heard 551 with an address on the new one that then refused the mail at DATA; and
check-config called the time of a conversation's last SMS sent that of "the last answer mailed".
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, running_gateway
from tests.test_cli_errors import run
from tests.test_session_limits import blocking
from tests.test_smtp_former_domains import OLD, PHONE, moved, rcpts, renamed

SERVED_KEY, HELD_KEY = "domains_served", "domains_held"  # in the store's key/value table


def keys(db: Path) -> dict[str, object]:
    from gateway.smtp import domainsserved  # (here: the old code had none, and its other tests run)

    with sqlite3.connect(db) as conn:
        rows = conn.execute(domainsserved.KEYS)
        return {key: json.loads(value) for key, value in rows}


def statements(db: Path, configured: list[str], later: float = 0.0) -> tuple[list[str], list[str]]:
    """The statements a daemon's start `later` seconds from now (`at_start`) and a reader (`held`) run
    on the file."""
    from gateway.smtp import domainsserved

    at_start: list[str] = []
    conn = sqlite3.connect(db)
    try:
        conn.set_trace_callback(at_start.append)
        domainsserved.at_start(conn, configured, time.time() + later)
        read: list[str] = []
        conn.set_trace_callback(read.append)
        domainsserved.held(lambda query: conn.execute(query).fetchall(), configured)
    finally:
        conn.close()
    return at_start, read


def scans(run: list[str]) -> bool:
    return any("FROM conversations" in statement for statement in run)


async def test_the_table_is_read_once_a_domain_is_dropped_and_not_at_a_start_serving_them_all(
    tmp_path: Path,
) -> None:
    path, _, text = renamed(tmp_path)  # no key yet: conversations on OLD, the config's domain DOMAIN
    db = parse_config(text, source="test", base_dir=tmp_path).db_path
    assert keys(db) == {}
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        answer = await blocking(lambda: rcpts(gw.port, [f"{PHONE}@{OLD}"]))
        assert answer == [moved(f"{PHONE}@{OLD}", OLD, f"{PHONE}@{DOMAIN}")]
    kept = keys(db)
    assert kept[SERVED_KEY] == sorted([DOMAIN, OLD]), kept
    [[domain, count, _]] = kept[HELD_KEY]["held"]  # type: ignore[index]
    assert (domain, count) == (OLD, 1)
    # The intake workers and check-config read what the start found, for the same domains, and so does
    # the next start within a day; one after that reads the table again (its conversations may go).
    start, read = statements(db, [DOMAIN])
    assert not scans(start) and not scans(read), (start, read)
    start, _ = statements(db, [DOMAIN], later=86_400)
    assert scans(start), start
    check = run(path, "check-config")
    assert f"[gateway] domains no longer has {OLD}, which 1 stored conversation(s) name" in check.stderr
    # With the domain added back, nothing is held of it, and a start serving both reads no conversation.
    both = text.replace(f'domains = ["{DOMAIN}"]', f'domains = ["{DOMAIN}", "{OLD}"]', 1)
    path.write_text(both)
    async with running_gateway(parse_config(both, source="test", base_dir=tmp_path)) as gw:
        assert gw.daemon.gate.former_domains == frozenset()
    kept = keys(db)
    assert kept[SERVED_KEY] == sorted([DOMAIN, OLD]) and kept[HELD_KEY]["held"] == [], kept  # type: ignore[index]
    start, read = statements(db, [OLD, DOMAIN])
    assert not scans(start) and not scans(read), (start, read)
    assert OLD not in run(path, "check-config").stderr
    # Dropped again: the start reads the table, and the others what it found.
    path.write_text(text)
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        assert gw.daemon.gate.former_domains == frozenset([OLD])
    assert [row[0] for row in keys(db)[HELD_KEY]["held"]] == [OLD]  # type: ignore[index]
    _, read = statements(db, [DOMAIN])
    assert not scans(read), read


def test_check_config_names_the_last_sms_sent_in_a_conversation(tmp_path: Path) -> None:
    path, _, _ = renamed(tmp_path)
    [held] = [line for line in run(path, "check-config").stderr.splitlines() if "conversation" in line]
    assert "(the last SMS sent in one 20" in held and "answer mailed" not in held, held


async def test_a_removed_services_confirmation_address_is_refused_as_any_unknown(tmp_path: Path) -> None:
    path, token, text = renamed(tmp_path)
    removed = run(path, "premium", "remove", "KP123")
    assert removed.returncode == 0, removed.stderr
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        answers = await blocking(
            lambda: rcpts(gw.port, [f"confirm-{token}@{OLD}", f"confirm-{token}@elsewhere.example"])
        )
    # Not sent on to its address on the new domain, which refused the mail at DATA as a removed one's.
    assert [code for code, _ in answers] == [550, 550], answers
    assert all("Relay access denied" in reply for _, reply in answers), answers
