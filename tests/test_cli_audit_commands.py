# ruff: noqa: F811  (the tests take test_cli_audit's `cli` fixture, imported by name)
"""The command line's audit rows (R-2.5) of the remaining commands that change something, each run as
`smsgw` runs, in a process of its own, its row read back with `smsgw audit` in another: outbox
retry, premium verify --resend and set, billing run --send (and one failing partway), restore, and
auth unlock asked of the running daemon. Split from test_cli_audit.py by subject (it was over 400
lines); `trail`, `fields` and the `cli` fixture stay there."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gateway.store.db import Store
from tests.test_account_show import CLI
from tests.test_cli_audit import (
    ME,
    cli,  # noqa: F401  (the fixture)
    fields,
    rows,
    trail,
)


def test_outbox_retry_is_audited_one_mail_by_its_id_and_all_by_their_number(cli: CLI, tmp_path: Path) -> None:
    from tests.test_process import smsgw

    cli.ok("account", "add", "ACME")
    store = Store.open(tmp_path / "state" / "smsgw.db")
    try:
        with store.db.transaction():
            ids = [
                store.outbox.enqueue_mail("dsn", "", f"u{i}@acme.pl", b"Subject: x\r\n\r\nx\r\n")
                for i in range(3)
            ]
            store.db.conn.execute("UPDATE outbox SET state = 'failed', attempts = 5")
    finally:
        store.close()
    done = smsgw(cli.path, "outbox", "retry", str(ids[0]))
    assert done.returncode == 0, done.stderr
    assert smsgw(cli.path, "outbox", "retry", "99999").returncode == 1  # no such mail: no row
    done = smsgw(cli.path, "outbox", "retry", "--all")
    assert done.returncode == 0, done.stderr
    assert smsgw(cli.path, "outbox", "retry", str(ids[1])).returncode == 0  # queued again: still retried
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as c:
        c.execute("UPDATE outbox SET state = 'sent'")
        c.commit()
    assert smsgw(cli.path, "outbox", "retry", "--all").returncode == 0  # nothing waiting: no row
    listed = [fields(line) for line in trail(cli.path)]
    assert [f[2:] for f in listed[:3]] == [
        ["outbox.retry", str(ids[1])],
        ["outbox.retry", "all: 3 mail(s)"],
        ["outbox.retry", str(ids[0])],
    ]
    assert {f[0] for f in listed[:3]} == {rows(tmp_path)[-1][0]} and rows(tmp_path)[-1][0].startswith(
        f"cli:{ME}"
    )
    assert {f[1] for f in listed[:3]} == {"-"}
    assert len(listed) == 4  # and the account's


def test_premium_verify_resend_is_audited_without_the_token_and_a_set_changing_nothing_is_not(
    cli: CLI, tmp_path: Path
) -> None:
    from tests.test_process import smsgw

    cli.ok("account", "add", "ACME")
    cli.ok("premium", "add", "KP123", "--account", "ACME", "--email", "votes@acme.pl")
    assert smsgw(cli.path, "premium", "verify", "kp123").returncode == 0  # only shows the state: no row
    assert smsgw(cli.path, "premium", "verify", "KP999", "--resend").returncode == 1  # no service: no row
    done = smsgw(cli.path, "premium", "verify", "kp123", "--resend")
    assert done.returncode == 0, done.stderr
    # The same address and reply list given again: "updated", and nothing changed, so no row.
    done = smsgw(
        cli.path, "premium", "set", "KP123", "--email", "VOTES@acme.pl", "--reply-acl", "votes@acme.pl"
    )
    assert done.returncode == 0, done.stderr
    listed = trail(cli.path)
    assert [fields(line)[1:] for line in listed] == [
        [
            "ACME",
            "premium.verify",
            "KP123 votes@acme.pl: a new confirmation mailed, earlier ones no longer work",
        ],
        ["ACME", "premium.add", "KP123 ACME votes@acme.pl (numbers all, reply ACL votes@acme.pl)"],
        ["-", "account.add", "ACME (networks none, sender none)"],
    ]
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as c:
        tokens = [t for (t,) in c.execute("SELECT token FROM premium_verifications")]
    assert len(tokens) == 2 and not any(t in "\n".join(listed) for t in tokens)


def test_billing_run_send_is_audited_with_the_month_the_accounts_and_again(tmp_path: Path) -> None:
    from gateway.config import load_config
    from tests.conftest import config_text
    from tests.test_billing import Clock, at, mt
    from tests.test_process import smsgw

    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    store = Store.open(tmp_path / "state" / "smsgw.db", clock=Clock(at(2026, 2, 1)))
    try:
        acme = store.accounts.add_account("acme").id
        store.accounts.set_billing_addresses("acme", ["billing@acme.pl"])
        mt(store, acme, at(2026, 2, 3))
    finally:
        store.close()
    done = smsgw(config, "billing", "run", "--month", "2026-02")  # files only, no mail: no row
    assert done.returncode == 0, done.stderr
    assert trail(config) == ["no changes recorded"]
    first = smsgw(config, "billing", "run", "--month", "2026-02", "--send")
    assert first.returncode == 0, first.stderr
    assert smsgw(config, "billing", "run", "--month", "2026-02", "--send").returncode == 1  # mailed: held
    nobody = smsgw(config, "billing", "run", "--month", "2026-02", "--account", "nobody", "--send")
    assert nobody.returncode == 1
    again = smsgw(config, "billing", "run", "--month", "2026-02", "--account", "acme", "--send", "--again")
    assert again.returncode == 0, again.stderr
    admin = load_config(config).mail.admin_address
    assert [fields(line)[1:] for line in trail(config)] == [
        [
            "acme",
            "billing.send",
            f"2026-02 file of account acme (--again): mailed to billing@acme.pl, {admin}",
        ],
        ["-", "billing.send", f"2026-02 summary: mailed to {admin}"],
        ["acme", "billing.send", f"2026-02 file of account acme: mailed to billing@acme.pl, {admin}"],
    ]
    assert [fields(line)[2] for line in trail(config, "--account", "acme")] == ["billing.send"] * 2


def test_restore_is_recorded_in_the_restored_database_by_the_backups_name_without_its_path(
    cli: CLI, tmp_path: Path
) -> None:
    from tests.test_process import smsgw

    cli.ok("account", "add", "ACME")
    backup = tmp_path / "backups" / "smsgw-2026-12-01.db"
    backup.parent.mkdir()
    cli.ok("backup", str(backup))
    cli.ok("account", "set", "ACME", "--monthly-limit", "1000")  # lost with the restore; its audit row kept
    damaged = tmp_path / "backups" / "not-a-database.db"
    damaged.write_text("no database")
    assert smsgw(cli.path, "restore", str(damaged)).returncode == 1  # refused: nothing recorded anywhere
    done = smsgw(cli.path, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    listed = trail(cli.path)
    assert len(listed) == 3, listed
    actor, account, action, detail = fields(listed[0])
    assert (account, action) == ("-", "database.restore") and actor.startswith(f"cli:{ME}")
    assert detail.startswith("from smsgw-2026-12-01.db (schema version ") and "0 messages); carried" in detail
    assert str(tmp_path) not in "\n".join(listed)
    assert [fields(line)[2] for line in listed[1:]] == ["account.set", "account.add"]
    assert smsgw(cli.path, "account", "list").returncode == 0  # the restored database opens


async def test_auth_unlock_is_audited_when_the_running_daemon_is_asked(tmp_path: Path) -> None:
    from gateway.config import load_config
    from tests.conftest import running_gateway
    from tests.test_auth_unlock import until
    from tests.test_process import smsgw
    from tests.test_submission import blocking, submission_config_text

    config = tmp_path / "config.toml"
    config.write_text(submission_config_text(tmp_path, 1, None))
    cfg = load_config(config)
    # Without a daemon there is no lock to lift and nothing is asked: no row.
    assert (await blocking(lambda: smsgw(config, "auth", "unlock", "192.0.2.7"))).returncode == 0
    assert smsgw(config, "auth", "unlock", "192.0.2").returncode == 2  # neither address nor login
    async with running_gateway(cfg):
        from gateway.housekeeping import read_status

        await until(lambda: read_status(cfg.state_dir) is not None)
        for target in (["Anna@Acme.example", "192.0.2.7"], []):
            done = await blocking(lambda t=target: smsgw(config, "auth", "unlock", *t))  # type: ignore[misc]
            assert done.returncode == 0, done.stderr
    assert [fields(line)[1:] for line in trail(config) if "auth.unlock" in line] == [
        ["-", "auth.unlock", "every address and login"],
        ["-", "auth.unlock", "anna@acme.example, 192.0.2.7"],
    ]
    assert len([line for line in trail(config) if "auth.unlock" in line]) == 2


# A `billing run --send` writes each file's row with that file's mails (not one row after them all),
# an unlock names a login that names no user as such, `smsgw audit` keeps each row on its line, and
# $SUDO_USER names who ran sudo only where sudo could have set it.


def billed_month(tmp_path: Path) -> Path:
    """A state directory with ACME and BETA, each with a message of 2026-02 and a billing address."""
    from tests.conftest import config_text
    from tests.test_billing import Clock, at, mt

    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    store = Store.open(tmp_path / "state" / "smsgw.db", clock=Clock(at(2026, 2, 1)))
    try:
        for name in ("acme", "beta"):
            account = store.accounts.add_account(name).id
            store.accounts.set_billing_addresses(name, [f"billing@{name}.pl"])
            mt(store, account, at(2026, 2, 3))
    finally:
        store.close()
    return config


def test_a_billing_send_failing_partway_leaves_the_row_of_each_file_it_mailed_on_its_account(
    tmp_path: Path,
) -> None:
    from gateway.config import load_config
    from tests.test_process import smsgw

    config = billed_month(tmp_path)
    admin = load_config(config).mail.admin_address
    db = tmp_path / "state" / "smsgw.db"
    with closing(sqlite3.connect(db)) as c:
        beta = c.execute("SELECT id FROM accounts WHERE name = 'beta'").fetchone()[0]
        # BETA's mail cannot be queued (as with the database locked past the busy timeout): the
        # run stops after ACME's file was mailed.
        c.execute(
            "CREATE TRIGGER fail_beta BEFORE INSERT ON outbox WHEN NEW.rcpt = 'billing@beta.pl'"
            " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
        c.commit()
    failed = smsgw(config, "billing", "run", "--month", "2026-02", "--send")
    assert failed.returncode != 0, failed.stdout
    with closing(sqlite3.connect(db)) as c:
        queued = sorted(r for (r,) in c.execute("SELECT rcpt FROM outbox"))
    assert queued == sorted(["billing@acme.pl", admin])
    listed = trail(config, "--account", "acme")
    assert listed != ["no changes recorded"], "ACME's money mail queued without a row"
    assert [fields(line)[1:] for line in listed] == [
        ["acme", "billing.send", f"2026-02 file of account acme: mailed to billing@acme.pl, {admin}"]
    ]
    assert len(trail(config)) == 1  # nothing of BETA's, nor of the summary, was mailed

    # BETA's row cannot be written: its mails are not queued either (one transaction).
    with closing(sqlite3.connect(db)) as c:
        c.execute("DROP TRIGGER fail_beta")
        c.execute(
            f"CREATE TRIGGER fail_row BEFORE INSERT ON audit WHEN NEW.account_id = {beta}"
            " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
        c.commit()
    assert smsgw(config, "billing", "run", "--month", "2026-02", "--send").returncode != 0
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 2
        c.execute("DROP TRIGGER fail_row")
        c.commit()
    done = smsgw(config, "billing", "run", "--month", "2026-02", "--send")
    assert done.returncode == 1, done.stderr  # ACME's file was mailed before: held
    assert [fields(line)[1:] for line in trail(config)] == [
        ["-", "billing.send", f"2026-02 summary: mailed to {admin}"],
        ["beta", "billing.send", f"2026-02 file of account beta: mailed to billing@beta.pl, {admin}"],
        ["acme", "billing.send", f"2026-02 file of account acme: mailed to billing@acme.pl, {admin}"],
    ]
