"""Account names the billing files print alike.

The billing files, their summary and its mail print a name without what does not print: a zero-width
space (`\\u200bdemo`), a soft hyphen (`acme\\u00ad`) or a no-break space (`Best\\u00a0Sp`) made an
account of its own that read `demo`, `acme` and `Best Sp` there, beside the accounts of those names.
`account add` and the panel refuse such names, and a name that prints as an existing account's, and the
start makes no account of such an [[account]] block; accounts made before with them get their id after
their printed name.

The CLI in another process over a real SQLite file; the panel over HTTP in process.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from billing_reports.mailedrecord import RECORD
from gateway.config import parse_config
from gateway.store.db import Store
from tests.billing_world import at, cli, last_billed, prepare
from tests.conftest import free_port
from tests.test_config_checks import shipped
from tests.test_restore_billing_lost import lose
from tests.test_web_admin_day import _error, web  # noqa: F401  (the panel fixture)
from tests.web_helpers import OPERATOR, as_user, csrf_of

ZWSP, SHY, NBSP = "\u200bdemo", "acme\u00ad", "Best\u00a0Sp"
UNSEEN = {
    "\u200bdemo": "U+200B (a format character, which shows as nothing)",
    "acme\u00ad": "U+00AD (a format character, which shows as nothing)",
    "Best\u00a0Sp": "U+00A0 (a space other than the plain one, which prints as one)",
    "x\u202fy": "U+202F (a space other than the plain one, which prints as one)",
    "\u3164demo": "U+3164 (a blank filler, which shows as a space)",
}


@pytest.mark.parametrize("name", sorted(UNSEEN))
def test_account_add_refuses_characters_that_do_not_print(tmp_path: Path, name: str) -> None:
    config, cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"demo": []})
    res = cli(config, "account", "add", name)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert f"account name {name!r} holds {UNSEEN[name]}: give a plain name" in res.stderr, res.stderr
    assert _names(cfg) == ["demo"]


def _names(cfg: Any) -> list[str]:
    store = Store.open(cfg.db_path)
    try:
        return sorted(a.name for a in store.accounts.list_accounts())
    finally:
        store.close()


def test_a_name_printed_as_an_older_accounts_is_refused(tmp_path: Path) -> None:
    # Made before such names were refused, as a database of an older release holds them.
    legacy = [NBSP, ZWSP]
    config, cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={n: [] for n in legacy})
    for name, older in (("Best Sp", NBSP), ("demo", ZWSP)):
        res = cli(config, "account", "add", name)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert (
            f"account name {name!r} prints as {name!r} in the billing files and their summary, as account"
            f" {older!r} does" in res.stderr
        ), res.stderr
    # Case tells names apart as before (a warning of a look-alike, not a refusal).
    res = cli(config, "account", "add", "DEMO")
    assert res.returncode == 0, res.stderr
    assert _names(cfg) == sorted([*legacy, "DEMO"])


def test_the_configs_accounts_follow_the_same_rule(tmp_path: Path) -> None:
    # The config takes such a block (one written before the rule must not stop a site's start: for a
    # stored account it changes nothing), but the start makes no new account of it.
    text = shipped(('name = "demo"', 'name = "\\u200bdemo"'))
    cfg = parse_config(text, source="config.toml", base_dir=tmp_path)
    assert [a.name for a in cfg.account] == [ZWSP]
    from gateway.accountseed import seed_refusal
    from gateway.adminrules import seed_accounts

    store = Store.open(tmp_path / "seeded.db")
    try:
        seed_accounts(store, cfg)
        assert [a.name for a in store.accounts.list_accounts()] == []
        assert seed_refusal(cfg.account[0], ()) == (
            f"account name {ZWSP!r} holds {UNSEEN[ZWSP]}: give a plain name in the block"
        )
    finally:
        store.close()


async def test_the_panel_refuses_them_too(web: object) -> None:  # noqa: F811
    store = web.store  # type: ignore[attr-defined]
    await store.write(lambda: store.accounts.add_account(NBSP))  # an older account
    async with as_user(web, OPERATOR) as c:  # type: ignore[arg-type]
        token = csrf_of((await c.get("/operator/accounts")).text)
        clash = "prints as 'Best Sp' in the billing files and their summary, as account 'Best\\xa0Sp'"
        for name, words in ((SHY, "holds U+00AD (a format character"), ("Best Sp", clash)):
            r = await c.post("/operator/accounts", data={"csrf": token, "action": "add", "name": name})
            assert r.status_code == 400 and words in _error(r.text), (name, _error(r.text))


def test_older_accounts_printed_alike_are_told_apart_in_the_billing_files(tmp_path: Path) -> None:
    names = ["demo", ZWSP, "acme", SHY, "Best Sp", NBSP, "'total"]
    config, cfg = prepare(
        tmp_path, free_port(), last_billed=None, traffic={n: [at(2026, 2, 3, 9)] for n in names}
    )
    store = Store.open(cfg.db_path)
    try:
        ids = {a.name: a.id for a in store.accounts.list_accounts()}
    finally:
        store.close()
    res = cli(config, "billing", "run", "--month", "2026-02")
    assert res.returncode == 0, res.stderr
    directory = cfg.state_dir / "billing" / "2026-02"
    lines = (directory / "_summary.txt").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("account\t"))
    starts = [line.split("\t")[0] for line in lines[header + 1 : -2]]
    # Each its own line; a name printed as written is the name, one that is not has its id after it.
    tagged = [f"demo~{ids[ZWSP]}", f"acme~{ids[SHY]}", f"Best Sp~{ids[NBSP]}"]
    assert sorted(starts) == sorted(["demo", "acme", "Best Sp", "''total", *tagged]), starts
    # Each file's header names its account as the summary's line does (without the summary's `'`).
    files = [p for p in directory.iterdir() if p.name != "_summary.txt"]
    heads = [next(x for x in p.read_text().splitlines() if x.startswith("# account\t")) for p in files]
    assert sorted(heads) == sorted("# account\t" + s.removeprefix("'") for s in starts), heads
    assert len(set(heads)) == len(names)
    res = cli(config, "billing", "show", "--month", "2026-02", "--account", ZWSP)
    assert res.returncode == 0 and f"# account\tdemo~{ids[ZWSP]}\n" in res.stdout, res.stderr


def _sent_march(tmp_path: Path) -> tuple[Path, Any, Path, dict[str, int]]:
    """`demo` and an older `\\u200bdemo` with March SMS, a backup taken before March was billed, and
    March billed and queued by `billing run --send` since: (config, its Config, the backup, the ids)."""
    path, cfg = prepare(
        tmp_path,
        free_port(),
        last_billed="2026-02",
        traffic={"demo": [at(2026, 3, 2, 8)], ZWSP: [at(2026, 3, 3, 8), at(2026, 3, 4, 8)]},
    )
    store = Store.open(cfg.db_path)
    try:
        ids = {a.name: a.id for a in store.accounts.list_accounts()}
    finally:
        store.close()
    backup = tmp_path / "backup.db"
    assert (res := cli(path, "backup", str(backup))).returncode == 0, res.stderr
    res = cli(path, "billing", "run", "--month", "2026-03", "--send")
    assert res.returncode == 0, res.stderr
    return path, cfg, backup, ids


def test_the_summary_mail_tells_older_accounts_printed_alike_apart(tmp_path: Path) -> None:
    # Its line per account read the name alone: two lines "- demo: queued to ...", one for each.
    _path, cfg, _backup, ids = _sent_march(tmp_path)
    store = Store.open(cfg.db_path)
    try:
        raw = [bytes(c) for (c,) in store.db.conn.execute("SELECT content FROM outbox ORDER BY id")]
    finally:
        store.close()
    mails = [message_from_bytes(r, policy=policy.default) for r in raw]
    [summary] = [m for m in mails if str(m["Subject"]).startswith("SMS billing 2026-03: summary")]
    assert isinstance(summary, EmailMessage)
    body = summary.get_body(("plain",))
    assert body is not None
    fates = [line for line in body.get_content().splitlines() if line.startswith("- ")]
    assert sorted(line.split(":")[0] for line in fates) == ["- demo", f"- demo~{ids[ZWSP]}"], fates
    # Each account's own mail (the operator has a copy of each) is named as its summary line is.
    subjects = sorted(str(m["Subject"]) for m in mails if "summary" not in str(m["Subject"]))
    assert set(subjects) == {"SMS billing 2026-03: demo", f"SMS billing 2026-03: demo~{ids[ZWSP]}"}, subjects
    heads = set()
    for m in mails:
        if "summary" not in str(m["Subject"]) and isinstance(m, EmailMessage):
            part = m.get_body(("plain",))
            assert part is not None
            heads.add(part.get_content().splitlines()[0].split(" for ")[0])
    assert heads == {"Billing of account demo", f"Billing of account demo~{ids[ZWSP]}"}, heads


def test_a_restore_over_a_lost_database_takes_their_month_as_billed(tmp_path: Path) -> None:
    # The restore looked up `\u200bdemo` in the summary as "demo": `demo`'s checksum, not its file's.
    # March was taken as not whole, billed again at the next start from the backup's rows.
    path, cfg, backup, _ids = _sent_march(tmp_path)
    lose(cfg.db_path, "missing")
    res = cli(path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
    assert "the files of 2026-03 on disk" not in res.stdout, res.stdout
    store = Store.open(cfg.db_path)
    try:
        assert last_billed(store) == "2026-03"
    finally:
        store.close()


def test_the_restore_names_their_files_apart(tmp_path: Path) -> None:
    # `demo`'s mail not on the record: March is billed again but for the files the record names as
    # mailed, which the restore's line named "demo's file" for `\u200bdemo`'s, as if it were `demo`'s.
    path, cfg, backup, ids = _sent_march(tmp_path)
    record = cfg.billing_dir / "2026-03" / RECORD
    lines = record.read_text().splitlines(keepends=True)
    record.write_text("".join(x for x in lines if not x.startswith(f"{ids['demo']}\t")))
    lose(cfg.db_path, "missing")
    res = cli(path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    named = f"but for demo~{ids[ZWSP]}'s file, the summary, which the record names as mailed"
    assert named in res.stdout, res.stdout
