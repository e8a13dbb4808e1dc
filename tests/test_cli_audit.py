"""R-2.5: a change made with the command line is audited as the panel's are (who, when, what, old → new,
never a secret), and `smsgw audit` lists the trail, the panel's rows and the command line's alike.

The commands run as `smsgw` runs them, on a real state directory; the panel's row is made by the
real panel app through a real HTTP client, on the same database file. The rows of outbox retry,
premium verify, billing run --send, restore and auth unlock have a module of their own
(test_cli_audit_commands.py)."""

from __future__ import annotations

import io
import os
import pwd
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from gateway.store.db import Store
from tests.test_account_show import CLI
from tests.web_helpers import client, csrf_of, login, web_context

ME = pwd.getpwuid(os.geteuid()).pw_name
SECRET = "horse battery staple 42"


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CLI:
    from tests.conftest import config_text

    monkeypatch.delenv("SUDO_USER", raising=False)
    path = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=2775, timezone="Europe/Warsaw")
    path.write_text(text + '\n[premium]\nnumbers = ["7355"]\n')
    (tmp_path / "state").mkdir()
    return CLI(path, capsys)


def rows(tmp_path: Path) -> list[tuple[str, str, int | None, str, str]]:
    """The trail as stored, oldest first."""
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as c:
        return c.execute("SELECT actor, action, account_id, detail, at FROM audit ORDER BY id").fetchall()


def actions(tmp_path: Path) -> list[tuple[str, str]]:
    return [(action, detail) for _, action, _, detail, _ in rows(tmp_path)]


def set_password(cli: CLI, monkeypatch: pytest.MonkeyPatch, email: str) -> list[str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    return cli.ok("user", "passwd", email)


def test_each_change_of_the_command_line_leaves_its_row_with_actor_and_old_and_new_value(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("account", "add", "ACME", "--relay-network", "192.0.2.0/24")
    cli.ok("account", "set", "ACME", "--monthly-limit", "1000")
    cli.ok("account", "set", "ACME", "--monthly-limit", "5000", "--billing-to", "billing@acme.pl")
    cli.ok("user", "add", "anna@acme.pl", "--account", "ACME")
    cli.ok("user", "set", "anna@acme.pl", "--daily-limit", "10", "--role", "admin")
    cli.ok("optout", "add", "+48601123456")
    cli.ok("optout", "remove", "+48601123456")
    cli.ok("account", "suspend", "ACME", "--reason", "unpaid invoice")
    cli.ok("account", "suspend", "ACME", "--reason", "unpaid invoice")  # no change: no row
    cli.ok("account", "resume", "ACME")
    cli.ok("premium", "add", "KP123", "--account", "ACME", "--email", "votes@acme.pl")
    cli.ok("premium", "set", "KP123", "--email", "poll@acme.pl")
    cli.ok("premium", "remove", "KP123")
    cli.ok("user", "remove", "anna@acme.pl")
    cli.ok("account", "add", "TYPO")
    cli.ok("account", "remove", "TYPO")
    assert actions(tmp_path) == [
        ("account.add", "ACME (networks 192.0.2.0/24, sender none)"),
        ("account.set", "ACME: monthly_limit none → 1000"),
        ("account.set", "ACME: monthly_limit 1000 → 5000, billing_to none → billing@acme.pl"),
        ("user.add", "anna@acme.pl (account ACME)"),
        ("user.set", "anna@acme.pl: daily_limit none → 10, role user → admin"),
        ("optout.add", "+48601123456"),
        ("optout.remove", "+48601123456 (on the list by admin → off)"),
        ("account.suspend", "ACME: active → suspended (unpaid invoice)"),
        ("account.resume", rows(tmp_path)[8][3]),
        ("premium.add", "KP123 ACME votes@acme.pl (numbers all, reply ACL votes@acme.pl)"),
        ("premium.set", "KP123: email votes@acme.pl → poll@acme.pl, reply ACL votes@acme.pl → poll@acme.pl"),
        ("premium.remove", "KP123 poll@acme.pl"),
        ("user.remove", "anna@acme.pl (account ACME, role admin)"),
        ("account.add", "TYPO (networks none, sender none)"),
        ("account.remove", "TYPO"),
    ]
    resume = rows(tmp_path)[8][3]
    assert resume.startswith("ACME: suspended since ") and "(unpaid invoice) → active" in resume
    acme = rows(tmp_path)[1][2]
    assert acme is not None
    # Each row of an account's change names the account; what concerns the installation (the
    # opt-out list, an account added or removed) names none, as the panel's rows do.
    assert [a for _, _, a, _, _ in rows(tmp_path)] == [None, *[acme] * 4, None, None, *[acme] * 6, None, None]
    assert {actor for actor, *_ in rows(tmp_path)} <= {f"cli:{ME}"} | {
        actor for actor, *_ in rows(tmp_path) if actor.startswith(f"cli:{ME} (login ")
    }


@pytest.mark.skipif(os.getuid() != 0, reason="$SUDO_USER is believed only as root, as sudo leaves it")
def test_under_sudo_the_row_names_who_ran_it(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("account", "add", "ACME")
    monkeypatch.setenv("SUDO_USER", "anna-sudo")
    cli.ok("account", "set", "ACME", "--daily-limit", "50")
    assert rows(tmp_path)[-1][0] == f"cli:{ME} (sudo by anna-sudo)"


def test_a_change_refused_or_changing_nothing_leaves_no_row(cli: CLI, tmp_path: Path) -> None:
    cli.ok("account", "add", "ACME")
    before = rows(tmp_path)
    assert cli("account", "set", "NOPE", "--monthly-limit", "5")[0] == 1
    assert cli("optout", "remove", "+48601123456")[0] == 1
    assert cli("user", "add", "anna@acme.pl", "--account", "NOPE")[0] == 1
    assert cli("account", "resume", "ACME")[0] == 1
    assert cli("account", "set", "ACME", "--monthly-limit", "7", "--remove-cut-from", "Pozdrawiam")[0] == 2
    cli.ok("optout", "add", "+48601123456")
    cli.ok("optout", "add", "+48601123456")  # listed already: no change
    assert rows(tmp_path)[: len(before)] == before
    assert actions(tmp_path)[len(before) :] == [("optout.add", "+48601123456")]


async def test_audit_lists_the_panels_rows_with_the_command_lines_newest_first_without_a_secret(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.ok("account", "add", "ACME")
    cli.ok("account", "set", "ACME", "--monthly-limit", "1000")
    cli.ok("user", "add", "op@acme.pl", "--account", "ACME")
    cli.ok("user", "set", "op@acme.pl", "--role", "operator")
    said = set_password(cli, monkeypatch, "op@acme.pl")
    # The panel, on the same database, logged in with the password the command line set.
    store = Store.open(tmp_path / "state" / "smsgw.db")
    web = web_context(tmp_path, store)
    try:
        async with client(web) as c:
            assert (await login(c, "op@acme.pl", SECRET)).status_code == 303
            token = csrf_of((await c.get("/operator/accounts")).text)
            r = await c.post("/operator/accounts", data={"action": "add", "name": "NEWCO", "csrf": token})
            assert r.status_code in (200, 303), r.text
            assert "NEWCO" in (await c.get("/operator/accounts")).text
    finally:
        web.counts.close()
        store.close()
        (digest,) = (
            sqlite3.connect(tmp_path / "state" / "smsgw.db")
            .execute("SELECT password_hash FROM users WHERE email = 'op@acme.pl'")
            .fetchone()
        )
    cli.ok("optout", "add", "601123456")

    listed = cli.ok("audit")
    assert [line.split("  ")[1:4] for line in listed] == [
        [f"{rows(tmp_path)[-1][0]}", "-", "optout.add"],
        ["op@acme.pl", "-", "account.add"],
        [rows(tmp_path)[4][0], "ACME", "user.password"],
        [rows(tmp_path)[3][0], "ACME", "user.set"],
        [rows(tmp_path)[2][0], "ACME", "user.add"],
        [rows(tmp_path)[1][0], "ACME", "account.set"],
        [rows(tmp_path)[0][0], "-", "account.add"],
    ]
    assert listed[5].endswith("ACME: monthly_limit none → 1000")
    assert listed[1].endswith("account.add  NEWCO")
    # Times in [gateway] timezone (Warsaw), as the panel shows them.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    at = rows(tmp_path)[-1][4]
    assert listed[0].startswith(
        datetime.fromtimestamp(at, ZoneInfo("Europe/Warsaw")).strftime("%Y-%m-%d %H:%M:%S")
    )

    assert [line.split("  ")[3] for line in cli.ok("audit", "--account", "ACME", "--limit", "2")] == [
        "user.password",
        "user.set",
    ]
    assert [line.split("  ")[1] for line in cli.ok("audit", "--actor", "OP@acme")] == ["op@acme.pl"]
    assert len(cli.ok("audit", "--actor", "cli:")) == 6
    assert cli.ok("audit", "--since", "2999-01-01") == ["no changes recorded"]
    assert len(cli.ok("audit", "--since", "1h")) == 7
    assert cli("audit", "--account", "NOPE")[0] == 1

    # Never a secret: neither the password nor its hash, in the rows or in what the commands said.
    everything = "\n".join([*listed, *said, *(str(r) for r in rows(tmp_path))])
    assert SECRET not in everything and digest not in everything and digest.split("$")[-1] not in everything
    assert ("user.password", "op@acme.pl") in actions(tmp_path)


def test_a_listing_since_a_date_reads_the_rows_since_then_by_index(cli: CLI, tmp_path: Path) -> None:
    from gateway.store import audit

    cli.ok("account", "add", "ACME")
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        conn = store.db.conn
        plans = []
        for kwargs in ({"since": 0.0}, {"account_id": 1}, {"account_id": 1, "since": 0.0}):
            sql = []
            conn.set_trace_callback(sql.append)
            audit.trail(conn, **kwargs)  # type: ignore[arg-type]
            conn.set_trace_callback(None)
            query = next(s for s in sql if "FROM audit" in s)
            plans.append(" ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + query)))
        assert (
            "INDEX audit_at" in plans[0]
            and "INDEX audit_account" in plans[1]
            and "INDEX audit_account" in plans[2]
        )
        assert all("SCAN t" not in p or "USING" in p for p in plans), plans
    finally:
        store.close()


def test_an_account_added_by_mistake_is_still_removed_and_its_rows_stay(cli: CLI, tmp_path: Path) -> None:
    cli.ok("account", "add", "ACEM")
    cli.ok("account", "set", "ACEM", "--monthly-limit", "100")
    cli.ok("user", "add", "anna@acme.pl", "--account", "ACEM")
    cli.ok("user", "remove", "anna@acme.pl")
    assert cli.ok("account", "remove", "ACEM") == ["account ACEM removed"]
    cli.ok("account", "add", "ACME")  # given the id SQLite freed: none of the rows before is its
    assert [(action, account) for _, action, account, _, _ in rows(tmp_path)] == [
        ("account.add", None),
        ("account.set", None),
        ("user.add", None),
        ("user.remove", None),
        ("account.remove", None),
        ("account.add", None),
    ]
    assert cli.ok("audit", "--account", "ACME") == ["no changes recorded"]
    assert "ACEM: monthly_limit none → 100" in "\n".join(cli.ok("audit"))


# The remaining commands that change something: each run as `smsgw` runs, in a process of its own,
# and its row read back with `smsgw audit` in another.


def trail(config: Path, *args: str) -> list[str]:
    """`smsgw audit` as an admin runs it: one line a row, newest first."""
    from tests.test_process import smsgw

    done = smsgw(config, "audit", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def fields(line: str) -> list[str]:
    """A line of `smsgw audit` without its time: actor, account, action, detail."""
    return line.split("  ", 1)[1].split("  ", 3)


async def test_an_unlock_of_a_login_naming_no_user_does_not_put_its_text_in_the_trail(tmp_path: Path) -> None:
    """What was typed as a login that names no user may be a password (typed in the user-name
    field); the daemon's log masks it, and the row, read in the panel, does not show it either."""
    from gateway.config import load_config
    from gateway.housekeeping import read_status
    from tests.conftest import STAFF, running_gateway
    from tests.test_auth_unlock import until
    from tests.test_process import smsgw
    from tests.test_submission import blocking, submission_config_text

    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, None))
    cfg = load_config(config)
    async with running_gateway(cfg):  # with its user STAFF
        assert STAFF == "anna@acme.example"
        await until(lambda: read_status(cfg.state_dir) is not None)
        done = await blocking(lambda: smsgw(config, "auth", "unlock", "Tr0ub4dor@3", "Anna@Acme.example"))
        assert done.returncode == 0, done.stderr
    listed = trail(config)
    assert [fields(line)[1:] for line in listed if "auth.unlock" in line] == [
        ["-", "auth.unlock", "a login that names no user, anna@acme.example"]
    ]
    assert "tr0ub4dor" not in "\n".join(listed).casefold()


def test_a_backup_name_cannot_forge_a_line_of_smsgw_audit_nor_reach_the_terminal(
    cli: CLI, tmp_path: Path
) -> None:
    from tests.test_process import smsgw

    cli.ok("account", "add", "ACME")
    forged = "2026-12-01 09:00  cli:ceo  ACME  account.set  ACME: monthly_limit 1000 \u2192 99999"
    backup = tmp_path / f"b.db\n{forged}\x1b]0;owned\x07"
    cli.ok("backup", str(backup))
    done = smsgw(cli.path, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    listed = trail(cli.path)
    assert len(listed) == 2, listed  # the restore's row and the account's
    action, detail = fields(listed[0])[2:]
    assert action == "database.restore"
    assert detail.startswith(f"from b.db\\x0a{forged}\\x1b]0;owned\\x07 (schema version "), detail
    assert "\x1b" not in "\n".join(listed) and "\x07" not in "\n".join(listed)


def test_sudo_user_set_by_anyone_but_sudo_names_nobody(cli: CLI, tmp_path: Path) -> None:
    """$SUDO_USER is the environment's: anyone can set it. Only a process whose real user is root
    (as sudo leaves it) believes it; else the row names the real user."""
    from tests.test_process import CLI as COMMAND
    from tests.test_process import ROOT

    cli.ok("account", "add", "ACME")
    nobody = pwd.getpwnam("nobody").pw_uid
    # As root, the command runs with `nobody` as its real user (and root's rights, to read the
    # state directory): as a setuid program or a user's own SUDO_USER=ceo would.
    demote = (lambda: os.setreuid(nobody, 0)) if os.getuid() == 0 else None
    done = subprocess.run(
        [*COMMAND, "--config", str(cli.path), "account", "set", "ACME", "--daily-limit", "50"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SUDO_USER": "ceo"},
        preexec_fn=demote,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    actor = rows(tmp_path)[-1][0]
    assert "ceo" not in actor
    if demote is not None:
        assert actor == f"cli:{ME} (run by nobody)"
    else:
        assert actor == f"cli:{ME}" or actor.startswith(f"cli:{ME} (login ")


def test_a_command_run_by_sudo_to_the_service_user_names_who_ran_sudo(cli: CLI, tmp_path: Path) -> None:
    """`sudo -u smsgw smsgw ...` (what the refusal to run as root tells admins) leaves the service
    user as the real user: the row names who ran sudo when the parent process is sudo running as
    root (one a user made under that name runs as that user: `_sudo_parent`)."""
    from tests.test_process import CLI as COMMAND
    from tests.test_process import ROOT

    if os.getuid() != 0:
        pytest.skip("a parent process with root's rights needs root")
    cli.ok("account", "add", "ACME")
    # A shell under sudo's name, so that /proc names the parent `sudo`; `-p` keeps its root rights
    fake_sudo = tmp_path / "sudo"
    shutil.copy("/bin/sh", fake_sudo)
    nobody = pwd.getpwnam("nobody").pw_uid
    command = " ".join(shlex.quote(a) for a in [*COMMAND, "--config", str(cli.path)])

    def run(limit: str, demote: Any) -> str:
        done = subprocess.run(
            [str(fake_sudo), "-p", "-c", f"{command} account set ACME --daily-limit {limit}; true"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "SUDO_USER": "anna"},
            preexec_fn=demote,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return str(rows(tmp_path)[-1][0])

    # The parent keeps root's rights (as sudo does), the command runs with `nobody` as its real user.
    assert run("50", lambda: os.setreuid(nobody, 0)) == f"cli:{ME} (sudo by anna)"
