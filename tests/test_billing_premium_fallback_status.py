"""Premium SMS no service claimed are counted in the summary by what became of them: mailed to the
fallback address, each is `delivered` (to the operator's mailbox), as `smsgw mo list` says it went.

The summary's line "(premium MO without a service)" counted every one of them `failed`, while `mo
list` said each was mailed to the fallback address and the phones paid for them: the operator read
nine failures where nine paid votes had reached their mailbox.

Against real peers, as tests/test_premium_answer_rules.py: the daemon with its built-in SMSC
simulator, the votes through it, their mails at a real SMTP sink, then `smsgw billing run` and
`smsgw mo list` by the command line on the running daemon's store.
"""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports.monthly import STATUSES, Month
from billing_reports.writer import SUMMARY, UNCLAIMED, month_dir, write_month
from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.test_premium import World
from tests.test_premium_answer_rules import premium
from tests.test_premium_corrections import FEB, JAN, TZ, at, bill, summary, total_is_the_sum
from tests.test_premium_loop import PHONE

FALLBACK = "ops@example.com"  # test_premium_loop.premium_config's [premium] fallback_address


def summary_rows(text: str) -> dict[str, dict[str, int]]:
    """The summary's lines by their first column: sms, parts and the four status counts."""
    rows = {}
    for line in text.splitlines():
        if line.startswith(("#", "account\t", "end\t")):
            continue
        name, sms, parts, *rest = line.split("\t")
        counts = dict(zip(STATUSES, (int(n) for n in rest[: len(STATUSES)]), strict=True))
        rows[name] = {"sms": int(sms), "parts": int(parts), **counts}
    return rows


async def test_premium_sms_mailed_to_the_fallback_are_counted_delivered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with premium(tmp_path) as w:
        await w.vote()  # a client's vote, mailed to the client: delivered, as before
        for text in ("KP999 vote B", "Glosuje na C"):  # an unknown password, and none at all
            seen = len(w.sink.messages)
            mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": text, "protocol": "smpp"}
            assert (await send_command("127.0.0.1", w.gw.daemon.simulator.control_port, mo))["ok"]
            await w.sink.wait(seen + 1)
            assert w.sink.messages[seen][1] == [FALLBACK]
        cfg = parse_config(w.config.read_text(), source="test", base_dir=tmp_path)
        month = Month.containing(time.time(), ZoneInfo(cfg.gateway.timezone))
        capsys.readouterr()
        await w.cli("mo", "list")
        listed = capsys.readouterr().out
        assert listed.count("fallback") >= 2, listed  # what `mo list` says became of them
        await w.cli("billing", "run", "--month", str(month))
        summary = (month_dir(cfg.state_dir, month, cfg.billing_dir) / SUMMARY).read_text()

    rows = summary_rows(summary)
    assert rows[UNCLAIMED] == {"sms": 2, "parts": 2, "delivered": 2, "failed": 0, "expired": 0, "pending": 0}
    assert rows["acme"]["delivered"] == 1 and rows["acme"]["failed"] == 0
    for name, row in rows.items():  # every line's statuses add up to its SMS, the total's too
        assert sum(row[k] for k in STATUSES) == row["sms"], name
    assert rows["total"] == {k: rows["acme"][k] + rows[UNCLAIMED][k] for k in rows["total"]}


async def test_a_billed_fallback_vote_whose_copy_is_refused_later_is_booked_failed(tmp_path: Path) -> None:
    """Billed `delivered` in January (mailed to the fallback address), its mail refused for good in
    February: February books `delivered then failed` for no service, and the months add up."""
    w = World(tmp_path)
    w.now = at(2027, 1, 20, 12)
    await w.mo("KP999 vote B")  # no such service: to the fallback address
    await bill(w, JAN)
    assert summary(w, JAN)[UNCLAIMED][:6] == ["1", "1", "1", "0", "0", "0"]
    (told,) = [m for _k, _f, _r, m in w.outbox("billing") if "summary" in str(m["Subject"])]
    text = told.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "counts as delivered the premium SMS no service claimed\nthat were mailed to the fallback" in text
    w.now = at(2027, 2, 3, 12)
    (mail_id,) = w.store.db.conn.execute("SELECT id FROM outbox WHERE kind = 'premium-fallback'").fetchone()
    w.store.outbox.finish_mail(mail_id, "failed", "550 5.1.1 <premium-ops@example.com>: User unknown")
    assert [r[0] for r in w.premium_mo()] == ["failed"]
    write_month(w.store.path, w.config.state_dir, FEB, TZ, billing_dir=w.config.billing_dir)
    feb = summary(w, FEB)
    assert feb[UNCLAIMED][:6] == ["0", "0", "-1", "1", "0", "0"]  # sms, parts, delivered, failed, …
    total_is_the_sum(feb)
    jan = summary(w, JAN)[UNCLAIMED][2:6]
    summed = [int(a) + int(b) for a, b in zip(jan, feb[UNCLAIMED][2:6], strict=True)]
    assert dict(zip(STATUSES, summed, strict=True)) == {
        "delivered": 0,
        "failed": 1,
        "expired": 0,
        "pending": 0,
    }
