"""One mail server serving two companies, after 0.2.19 gave an address in two accounts' networks to the
narrower one's users alone.

acme held 127.0.0.0/24 and beta 127.0.0.2/32, one mail server at 127.0.0.2 serving both: 0.2.18 took
anna@acme from there, 0.2.19 refused her (550, permanent), the start said nothing, the log's reason
read as if acme's /24 did not hold the address, and its fix (`account set acme --add-network
127.0.0.2/32`) was refused by the CLI. `--shared` is now the admin's word that a server serves both;
the start names the overlap; the log names both networks and a fix the CLI takes. The CLI runs as a
process on a real SQLite file, the daemon as `smsgw run`, asked over real SMTP from 127.0.0.2/3.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import shlex
import smtplib
import time
from pathlib import Path

from tests.conftest import STAFF, config_text, free_port
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon
from tests.web_helpers import OPERATOR, as_user, csrf_of, panel_store, web_context

BOB = "bob@beta.example"


def setup(tmp_path: Path, smtp_port: int = 0) -> Path:
    """acme over 127.0.0.0/24 with anna, beta over 127.0.0.2/32 (inside it) with bob, as 0.2.18 took them."""
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port).split("[[account]]")[0]
    path = write_config(tmp_path, text)
    (tmp_path / "state").mkdir()
    for args in (
        ("account", "add", "acme", "--relay-network", "127.0.0.0/24"),
        ("account", "add", "beta", "--relay-network", "127.0.0.2/32"),
        ("user", "add", STAFF, "--account", "acme"),
        ("user", "add", BOB, "--account", "beta"),
    ):
        res = run(path, *args)
        assert res.returncode == 0, (args, res.stderr)
    return path


def test_another_accounts_very_network_is_taken_with_shared_and_the_refusal_says_so(tmp_path: Path) -> None:
    config = setup(tmp_path)
    res = run(config, "account", "set", "acme", "--add-network", "127.0.0.2/32")
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "--add-network 127.0.0.2/32 is account beta's relay network 127.0.0.2/32" in res.stderr
    assert (
        "if one mail server there serves both companies, give --add-network 127.0.0.2/32 --shared"
        in res.stderr
    )
    res = run(config, "account", "add", "gamma", "--relay-network", "127.0.0.2/32")
    assert res.returncode == 1 and "give --relay-network 127.0.0.2/32 --shared" in res.stderr, res.stderr
    # --shared is no licence for a network holding another's: a server anywhere in it would be both's.
    res = run(config, "account", "set", "beta", "--add-network", "127.0.0.0/16", "--shared")
    assert res.returncode == 1 and "holds account acme's relay network 127.0.0.0/24" in res.stderr, res.stderr
    assert "127.0.0.0/16" not in run(config, "account", "show", "beta").stdout
    res = run(config, "account", "set", "acme", "--add-network", "127.0.0.2/32", "--shared")
    assert res.returncode == 0 and "account acme updated" in res.stdout, res.stderr
    assert "note: 127.0.0.2/32 is also account beta's relay network" in res.stdout, res.stdout
    assert "127.0.0.2/32" in run(config, "account", "show", "acme").stdout
    res = run(config, "account", "add", "gamma", "--relay-network", "127.0.0.2/32", "--shared")
    assert res.returncode == 0 and "account gamma added" in res.stdout, res.stderr


def test_check_config_gives_the_shared_command_for_nested_networks(tmp_path: Path) -> None:
    config = setup(tmp_path)
    res = run(config, "check-config")
    assert res.returncode == 0, res.stderr
    [line] = [line for line in res.stderr.splitlines() if "share relay network addresses" in line]
    assert "accounts acme (127.0.0.0/24) and beta (127.0.0.2/32)" in line, line
    assert "taken only from users of account beta, no longer of acme" in line, line
    assert "`smsgw account set 'acme' --add-network 127.0.0.2/32 --shared`" in line, line


def mail_from(port: int, sender: str, source: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.example")
        code, text = c.docmd("MAIL", f"FROM:<{sender}>")
        return f"{code} {text.decode()}"


def logged(log: Path, event: str, timeout: float = 15.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        found = [e for e in lines if e.get("event") == event]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


async def test_the_start_names_the_overlap_and_the_logged_fix_brings_the_wider_account_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = setup(tmp_path, smtp_port=port)
    proc = await start_daemon(config, port)
    log = tmp_path / "daemon.log"
    try:
        start = await asyncio.to_thread(logged, log, "config.relay_networks_shared", 1.0)
        refused = await asyncio.to_thread(mail_from, port, STAFF, "127.0.0.2")
        [entry] = await asyncio.to_thread(logged, log, "smtp.sender_refused")
        fix = str(entry.get("fix", ""))
        res = await asyncio.to_thread(run, config, *shlex.split(fix)[1:])
        anna, bob = [await asyncio.to_thread(mail_from, port, s, "127.0.0.2") for s in (STAFF, BOB)]
        elsewhere = await asyncio.to_thread(mail_from, port, BOB, "127.0.0.3")  # acme's alone still
        check = await asyncio.to_thread(run, config, "check-config")
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert len(start) == 1, log.read_text()[-3000:]
    assert "accounts acme (127.0.0.0/24) and beta (127.0.0.2/32)" in str(start[0]["detail"]), start
    assert start[0]["level"] == "warning", start
    assert refused.startswith("550 5.7.1"), refused
    assert entry["reason"] == (
        "envelope sender's account acme holds the client's address in 127.0.0.0/24, but the narrower relay"
        " network 127.0.0.2/32 of account beta takes it: mail from there is taken only from users of beta"
    ), entry
    assert fix == "smsgw account set acme --add-network 127.0.0.2/32 --shared", entry
    assert res.returncode == 0, res.stderr
    assert anna.startswith("250") and bob.startswith("250"), (anna, bob)
    assert elsewhere.startswith("550 5.7.1"), elsewhere
    # Shared as the admin said: no longer "no longer of acme", the one line left names both.
    [line] = [line for line in check.stderr.splitlines() if "share relay network addresses" in line]
    assert "accounts acme (127.0.0.2/32) and beta (127.0.0.2/32)" in line, line
    assert "may send as users of both" in line, line


async def test_the_panel_keeps_refusing_another_accounts_network_and_names_the_cli_command(
    tmp_path: Path,
) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        (acme_net,) = store.accounts.get_account("acme").networks
        async with as_user(web, OPERATOR) as c:
            token = csrf_of((await c.get("/operator/accounts")).text)
            data = {"csrf": token, "action": "add", "name": "gamma", "networks": acme_net}
            r = await c.post("/operator/accounts", data=data)
        m = re.search(r'id="error">([^<]*)<', r.text)
        error = html.unescape(m.group(1)) if m else ""
        assert r.status_code == 400, r.status_code
        assert f"account acme's relay network {acme_net}" in error, error
        assert (
            "the panel shares no network between accounts: if one mail server there serves both companies,"
            f" `smsgw account add 'gamma' --relay-network {acme_net} --shared` does"
        ) in error, error
        assert "gamma" not in [a.name for a in store.accounts.list_accounts()]
    finally:
        web.counts.close()
        store.close()
