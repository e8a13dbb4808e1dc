"""Monthly billing per account, over a real store with an injected clock: account file names (a long
name gets a file, short ones keep theirs), a file that cannot be written not stopping the others and
named by a run by hand, month arguments checked, an answer billed with the account whose SMS it
answered, one user one total however they typed their address. Split from test_billing.py by subject
(it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from billing_reports import failures, job, writer
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from billing_reports.writer import file_name, write_month
from gateway.cli.main import main
from gateway.store.db import Store
from tests.billing_reader import read
from tests.test_billing import TZ, add_account, at, mt, setup

# ---- account file names, a file that cannot be written, month arguments, answers of a moved user ----

LONG = "Spółka Akcyjna " + "ż" * 40  # 55 characters, a file name of 273 bytes once escaped (255 at most)


def test_a_long_account_name_gets_a_file_and_short_names_keep_theirs(tmp_path: Path) -> None:
    # The escaped name had no cap: "File name too long" stopped the billing of every account.
    cfg, store, _, _ = setup(tmp_path, at(2026, 10, 1))
    add_account(store)
    mt(store, add_account(store, LONG), at(2026, 11, 3))
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 11), TZ)
    long = file_name(LONG)
    assert [(f.account, f.path.name, f.sums.sms) for f in files.accounts] == [
        (LONG, long, 1),
        ("acme", "acme.txt", 0),
    ]
    assert files.summary is not None and files.summary.exists()
    assert read(files.accounts[0].path.read_bytes()).header["account"] == [LONG]
    assert long.startswith("Sp%C3%B3%C5%82ka%20Akcyjna%20%C5%BC") and long.endswith(".txt")
    assert len(long.encode()) <= writer.MAX_FILE_NAME and "~" in long
    assert file_name(LONG + "a") != long and file_name(LONG) == long  # told apart, and the same every run
    assert len(file_name("😀" * 64).encode()) <= writer.MAX_FILE_NAME
    # The names of the files already written stay as they were.
    assert file_name("acme") == "acme.txt"
    assert file_name("_x") == "%5Fx.txt" and file_name(".x") == "%2Ex.txt"
    assert file_name("Łódź sp. z o.o.") == "%C5%81%C3%B3d%C5%BA%20sp.%20z%20o.o..txt"
    assert file_name("a" * 196) == "a" * 196 + ".txt"
    # Up to the longest name a file could be written under before (a 39-letter Cyrillic company
    # name escapes to 229 bytes): its earlier months are still found under the same name.
    cyrillic = "Товариство з обмеженою відповідальністю"
    assert "~" not in file_name(cyrillic) and len(file_name(cyrillic)) == 229
    assert file_name("a" * 238) == "a" * 238 + ".txt" and "~" in file_name("a" * 239)


async def test_an_account_whose_file_cannot_be_written_does_not_stop_the_others(tmp_path: Path) -> None:
    # The month is not recorded as billed (it is tried again), but the other accounts get their
    # files and mails at once, and the next run mails only what is missing: no mail twice.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    for name in ("acme", "beta", "zeta"):
        mt(store, add_account(store, name), at(2026, 2, 3))
        store.accounts.set_billing_addresses(name, [f"billing@{name}.pl"])
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-01")
    blocked = cfg.state_dir / "billing" / "2026-02" / "beta.txt"
    blocked.mkdir(parents=True)  # where beta's file goes: it cannot be renamed over a directory
    clock.now = at(2026, 3, 1, 0, 5)
    rcpts = lambda: [r[0] for r in store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]  # noqa: E731
    with capture_logs() as logs, pytest.raises(failures.MonthFailed):  # kept by the scheduler's job
        await job.run_due(store, cfg)
    failed = [e for e in logs if e["event"] == "billing.account_failed"]
    assert [(e["account"], e["month"]) for e in failed] == [("beta", "2026-02")]
    assert BillingRepo(store.db, store.clock).get(LAST_BILLED) == "2026-01"
    assert rcpts() == ["billing@acme.pl", cfg.mail.admin_address, "billing@zeta.pl", cfg.mail.admin_address]
    assert not (blocked.parent / "_summary.txt").exists()  # it would lack beta: written once all are
    assert (blocked.parent / "zeta.txt").exists()
    blocked.rmdir()
    assert await job.run_due(store, cfg) == [Month(2026, 2)]
    assert rcpts()[4:] == ["billing@beta.pl", cfg.mail.admin_address, cfg.mail.admin_address]
    summary = (blocked.parent / "_summary.txt").read_text()
    assert all(f"{name}\t1\t" in summary for name in ("acme", "beta", "zeta"))


def test_billing_run_by_hand_names_the_account_it_could_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 1, 10))
    for name in ("acme", "beta"):
        mt(store, add_account(store, name), at(2026, 2, 3))
    (cfg.state_dir / "billing" / "2026-02" / "acme.txt").mkdir(parents=True)
    capsys.readouterr()
    assert main(["-c", str(path), "billing", "run", "--month", "2026-02"]) == 1
    err = capsys.readouterr().err
    assert "1 account file(s) not written (acme: acme.txt: Is a directory)" in err
    assert (cfg.state_dir / "billing" / "2026-02" / "beta.txt").exists()
    with pytest.raises(writer.MonthIncomplete) as caught:
        write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    assert [f.account for f in caught.value.files.failed] == ["acme"]
    assert [f.account for f in caught.value.files.accounts] == ["beta"]


@pytest.mark.parametrize(
    "text", ["２０２６-11", "2026-1１", "0000-01", "0001-01", "1999-12", "9999-12", "2026-13"]
)
def test_a_month_is_ascii_digits_within_a_sane_range(text: str) -> None:
    # Full-width digits were read as 2026-11; year 0 and 9999-12 stopped with "year 0 is out of
    # range" (the option not named), and 0001-01 wrote a billing/0001-01 directory.
    with pytest.raises(ValueError, match="give YYYY-MM between 2000-01 and 9998-12"):
        Month.parse(text)
    with pytest.raises(ValueError) as caught:
        Month.parse(text, option="--month")
    assert str(caught.value) == f"--month {text}: give YYYY-MM between 2000-01 and 9998-12, such as 2026-03"
    assert Month.parse("2000-01") == Month(2000, 1) and Month.parse(" 9998-12 ") == Month(9998, 12)
    assert Month(9998, 12).bounds(TZ)[1] > Month(9998, 12).bounds(TZ)[0]


def test_billing_run_refuses_a_month_out_of_range_without_writing(tmp_path: Path) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 1, 10))
    add_account(store)
    for month in ("0001-01", "9999-12", "0000-01"):
        assert main(["-c", str(path), "billing", "run", "--month", month]) == 2
    assert not (cfg.state_dir / "billing").exists()


async def test_an_answer_stays_with_the_account_whose_sms_it_answered(tmp_path: Path) -> None:
    # The reply lines were billed through the conversation's account as it stood at billing time,
    # and the conversation moves with the user's next SMS: a user moved from acme to beta took
    # acme's past answers into beta's file.
    from gateway.conversations import handlers
    from gateway.conversations.repo import ConversationsRepo

    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    acme, beta = add_account(store, "acme"), add_account(store, "beta")
    conversations = ConversationsRepo(store.db, store.clock)
    phone, ours = "+48601123456", "+48100200300"

    def sms_from_anna(account_id: int, ts: float) -> None:
        clock.now = ts
        conversations.record_mt(
            phone=phone, number=ours, user_email="anna@acme.example", account_id=account_id,
            domain="sms.example.com", header_message_id=None, subject="Meeting", text="At 10?",
        )  # fmt: skip

    def answer(ts: float, text: str) -> str:
        clock.now = ts
        mo_id = store.mo.record_mo("main", phone, ours, text, 0, None)
        assert mo_id is not None
        return handlers.on_whole_mo(store, cfg, mo_id, earlier=store.mo.redelivery_of(mo_id))

    store.accounts.add_user("anna@acme.example", "acme")
    sms_from_anna(acme, at(2026, 2, 3, 9))
    assert answer(at(2026, 2, 3, 10), "Yes") == "mailed"
    store.accounts.remove_user("anna@acme.example")  # she moves to beta and writes from there
    store.accounts.add_user("anna@acme.example", "beta")
    sms_from_anna(beta, at(2026, 2, 10, 9))
    assert answer(at(2026, 2, 10, 10), "No") == "mailed"
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    replies = {
        f.account: [r["time"] for r in read(f.path.read_bytes()).sms if r["kind"] == "MO-reply"]
        for f in files.accounts
    }
    assert replies == {"acme": ["10:00:00"], "beta": ["10:00:00"]}
    dates = {f.account: [r["date"] for r in read(f.path.read_bytes()).sms] for f in files.accounts}
    assert dates == {"acme": ["2026-02-03"], "beta": ["2026-02-10"]}


async def test_one_user_is_one_user_total_however_they_typed_their_address(tmp_path: Path) -> None:
    # totals per user: the envelope address as typed (anna@ and Anna@) made two users.
    import time

    from tests.conftest import STAFF, free_port, mail, make_config, running_gateway

    cfg = make_config(tmp_path, smsc_port=free_port())
    async with running_gateway(cfg) as gw:
        for sender in (STAFF, STAFF.capitalize()):
            to = "+48601123456@sms.example.com"
            assert (await gw.send(mail([to], body=f"hi from {sender}"), sender=sender)).error is None
        await gw.until(lambda: len(gw.states()) == 2)
    tz = ZoneInfo(cfg.gateway.timezone)

    def user_totals() -> list[list[str]]:
        (account,) = write_month(cfg.db_path, cfg.state_dir, Month.containing(time.time(), tz), tz).accounts
        lines = account.path.read_text().splitlines()
        return [line.split("\t")[2:4] for line in lines if line.startswith("total\tuser\t")]

    assert user_totals() == [[STAFF, "2"]]
    # The user leaves the company: the ACL no longer names them, their SMS are still one person's.
    store = Store.open(cfg.db_path)
    store.accounts.remove_user(STAFF)
    store.close()
    assert user_totals() == [[STAFF.lower(), "2"]]
