"""A month built through real traffic (issue 12): SMTP in, the built-in SMSC (delivered, failed by
the SMSC, expired with no route), a two-way reply, a premium MO and its free answer; then the
month's run, the file mailed to a real SMTP sink and read back by a small reader: every SMS once,
totals equal to the store's counts, money exact in grosze.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import job
from billing_reports.monthly import Month
from gateway.cli.main import main
from gateway.config import parse_config
from gateway.premium import handlers
from smsc.simulator.control import send_command
from tests.billing_reader import grosze, read
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_premium_loop import CLIENT, reply_to, smtp
from tests.test_two_way import parsed

TZ = ZoneInfo("Europe/Warsaw")
PHONE = "+48601123456"


def loop_config(tmp_path: Path, relay: int) -> tuple[Path, object]:
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        smsc_extra='prefixes = ["+48"]',
        # +44 goes by a link that never comes up: such SMS wait, then expire (a number no link
        # serves at all is refused at RCPT).
        extra='\n[premium]\nnumbers = ["7355"]\nfallback_address = "ops@example.com"\n'
        f'\n[[smsc]]\nname = "uk"\ntype = "smpp"\nport = {free_port()}\nsystem_id = "smsgw"\n'
        'password = "secret"\nprefixes = ["+44"]\n',
    ).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, parse_config(text, source="test", base_dir=tmp_path)


async def test_a_month_of_real_traffic_billed_and_read_back(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = loop_config(tmp_path, relay)
    now = [datetime(2026, 3, 10, 12, tzinfo=TZ).timestamp()]
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:  # type: ignore[arg-type]
        db = gw.store.db.conn
        control = gw.daemon.simulator.control_port
        c = ["-c", str(path)]
        assert (
            await asyncio.to_thread(main, [*c, "account", "set", "acme", "--billing-to", "billing@acme.pl"])
            == 0
        )
        # MT: delivered, failed by the SMSC (a number ending 13), one with no route (expires), and
        # one with no route that the administrator cancels (`queue cancel` stores "cancelled by admin").
        for to in ("601123456", "601123413", "+447911123456", "+447911123457"):
            assert (await gw.send(mail(f"{to}@{DOMAIN}", body=f"to {to}"))).error is None
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM messages WHERE state IN "
                                          "('delivered','failed')").fetchone()[0] == 2)  # fmt: skip
        (held,) = db.execute("SELECT id FROM messages WHERE recipient = '+447911123457'").fetchone()
        assert await asyncio.to_thread(main, [*c, "queue", "cancel", str(held)]) == 0
        await gw.until(lambda: db.execute("SELECT state FROM messages WHERE id = ?", (held,)).fetchone()
                       == ("cancelled",))  # fmt: skip
        # The command stamps its end with the wall clock, months after this one: a bill is as of its
        # own time, and an SMS ended after it would be a later month's correction.
        ended = "UPDATE messages SET finished_at = ? WHERE id = ?"
        await gw.store.write(lambda: db.execute(ended, (now[0], held)))
        # An account with no billing address: its file goes to the operator alone.
        await gw.store.write(lambda: gw.store.accounts.add_account("beta"))
        # A two-way reply from the phone to the account's number.
        mo = {"op": "mo", "source": PHONE, "destination": "+48100200300", "text": "Tak, dzięki"}
        assert (await send_command("127.0.0.1", control, mo))["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM mo WHERE conversation_id IS NOT NULL")
                       .fetchone() == ("mailed",))  # fmt: skip

        # A premium service, confirmed by its client; a vote, and its free answer.
        # (what `smsgw premium add` does, on the daemon's loop: its rows carry the injected clock)
        def add() -> None:
            r = handlers.repo(gw.store)
            acme = gw.store.accounts.get_account("acme")
            service = r.service(r.add_service("KP123", acme.id, CLIENT, ["7355"], [CLIENT]))
            handlers.ask_verification(gw.store, cfg, service, "acme")

        await gw.store.write(add)
        await gw.until(lambda: any(CLIENT in r for _, r, _ in sink.messages))
        ask = parsed(next(raw for _, r, raw in sink.messages if CLIENT in r))
        assert (await smtp(gw.port, *reply_to(ask, "yes"))).error is None
        vote = {"op": "mo", "source": "+48601999888", "destination": "7355", "text": "KP123 vote A"}
        assert (await send_command("127.0.0.1", control, vote))["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("mailed",))
        await gw.until(lambda: sum(CLIENT in r for _, r, _ in sink.messages) == 2)
        forwarded = parsed([raw for _, r, raw in sink.messages if CLIENT in r][1])
        assert (await smtp(gw.port, *reply_to(forwarded, "Thanks!"))).error is None
        answered = "SELECT m.state FROM premium_answers a JOIN messages m ON m.id = a.message_id"
        await gw.until(lambda: db.execute(answered).fetchone() == ("delivered",))
        # A day later the +44 SMS is past its validity: the dispatcher expires it.
        now[0] += 25 * 3600
        gw.daemon.dispatcher.wake()
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM messages WHERE state = 'expired'").fetchone()[0] == 1
        )

        # April: the month's run (as the scheduler runs it) writes the files and queues the mails.
        now[0] = datetime(2026, 4, 1, 0, 5, tzinfo=TZ).timestamp()
        assert await job.run_due(gw.store, cfg) == [Month(2026, 3)]  # type: ignore[arg-type]
        billing = lambda: [(r, parsed(raw)) for _, r, raw in sink.messages  # noqa: E731
                           if str(parsed(raw)["Subject"]).startswith("SMS billing 2026-03")]  # fmt: skip
        await gw.until(lambda: len(billing()) == 4)
        admin = cfg.mail.admin_address  # type: ignore[attr-defined]
        assert sorted(r[0] for r, _ in billing()) == sorted(
            ["billing@acme.pl", admin, admin, admin]
        )  # acme's file ×2, beta's, summary
        # The summary mail says what became of each account's file, as it was when queued: acme's
        # went to its billing address, beta has none (it said "were mailed to each account's billing
        # addresses", and before any of them had left).
        summary = next(m for _, m in billing() if "summary" in str(m["Subject"]))
        words = summary.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "- acme: queued to billing@acme.pl and to you\n" in words
        assert "- beta: no billing address: queued to you only, the account gets no mail\n" in words
        assert "were mailed" not in words
        to_acme = next(m for r, m in billing() if r == ["billing@acme.pl"])
        attachment = next(to_acme.iter_attachments())
        assert attachment.get_content_type() == "text/plain" and attachment.get_content_charset() == "utf-8"
        data = attachment.get_payload(decode=True)
        assert data == (cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes()  # type: ignore[attr-defined]
        f = read(data)

        # Every SMS once, against the store.
        kinds = [r["kind"] for r in f.sms]
        assert sorted(kinds) == sorted(["MT"] * 4 + ["MO-reply", "premium-MO", "premium-answer"])
        store_mt = db.execute(
            "SELECT COUNT(*) FROM messages m WHERE m.id NOT IN (SELECT message_id FROM premium_answers"
            " WHERE message_id IS NOT NULL)"
        ).fetchone()[0]
        assert kinds.count("MT") == store_mt
        statuses = {(r["kind"], r["to"]): r["status"] for r in f.sms}
        assert statuses[("MT", "+48601123456")] == "delivered"
        assert statuses[("MT", "+48601123413")] == "failed"
        assert statuses[("MT", "+447911123456")] == "expired"
        # The reason the README documents, whoever cancelled it (the audit trail says who).
        cancelled = next(r for r in f.sms if r["to"] == "+447911123457")
        assert (cancelled["status"], cancelled["reason"]) == ("failed", "cancelled")
        assert statuses[("MO-reply", "+48100200300")] == "delivered"
        assert statuses[("premium-MO", "7355")] == "delivered"
        assert statuses[("premium-answer", "+48601999888")] == "delivered"
        price, commission = db.execute("SELECT SUM(price), SUM(commission) FROM premium_mo").fetchone()
        total = f.totals[("all", "-")]
        assert (grosze(total["price_pln"]), grosze(total["commission_pln"])) == (price, commission)
        assert grosze(f.totals[("number", "7355")]["price_pln"]) == price and price > 0
        # The number's total counts the paid SMS it received, as the operator and `premium stats`
        # do: the free answer sent from it is no SMS of the number (it made 2 SMS of 1 vote).
        number, premium_kind = f.totals[("number", "7355")], f.totals[("kind", "premium-MO")]
        assert (number["sms"], number["parts"], number["delivered"]) == ("1", "1", "1")
        assert number == premium_kind | {"group": "number", "key": "7355"}
        assert int(total["sms"]) == len(f.sms)
        assert int(f.totals[("user", STAFF)]["sms"]) == store_mt
        assert int(f.totals[("kind", "MT")]["failed"]) == 2  # the SMSC's refusal, the cancelled one
        assert int(f.totals[("kind", "MT")]["expired"]) == 1
        times = [(r["date"], r["time"]) for r in f.sms]
        assert times == sorted(times)

        # Idempotence: the next run (a restart, the month-end job again) mails nothing more.
        count = len(sink.messages)
        assert await job.run_due(gw.store, cfg) == []  # type: ignore[arg-type]
        assert (cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes() == data  # type: ignore[attr-defined]
        # A notice of the month's failures may still be on its way to the sink: it is no billing mail.
        # (The cancel's notice, queued by the command at the real time, is due later than this clock.)
        unsent = "SELECT COUNT(*) FROM outbox WHERE state != 'sent' AND next_attempt_at <= ?"
        await gw.until(lambda: db.execute(unsent, (now[0],)).fetchone()[0] == 0)
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'billing'").fetchone()[0] == 4
        assert len(billing()) == 4 and len(sink.messages) >= count
