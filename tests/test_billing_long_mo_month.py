"""A long reply is billed by when its phone sent it (its first part), not by when its parts were
joined (R-5.2: every SMS of the month): parts straddling local midnight, a set the reassembly timeout
joins after midnight, and its late part's line naming the SMS as the user's mail does. The daemon
with its built-in SMSC and an injected clock receives the parts; `smsgw billing run` reads them as
a process."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from billing_reports import job
from gateway import housekeeping as housekeeping_module
from gateway.config import parse_config
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.billing_reader import read
from tests.billing_world import TZ, cli
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed

ASKED, OURS, ANNA = "+48601000001", "+48100200300", "anna@acme.example"


def t(*a: int) -> float:
    return datetime(*a, tzinfo=TZ).timestamp()  # type: ignore[misc]


def configured(tmp_path: Path, relay: int) -> tuple[Path, Any]:
    smpp = free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        smsc_extra='prefixes = ["+48"]',
        timezone=TZ.key,
    ).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f'control_port = {free_port()}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, parse_config(text, source="test", base_dir=tmp_path)


def lines(path: Path, month: str) -> list[dict[str, str]]:
    res = cli(path, "billing", "run", "--month", month)
    assert res.returncode == 0, res.stderr
    return read((path.parent / "state" / "billing" / month / "acme.txt").read_bytes()).sms


def brief(sms: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [(s["date"], s["time"], s["kind"], s["user_or_phone"], s["parts"], s["reason"]) for s in sms]


async def test_a_long_reply_goes_by_its_first_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    relay = free_port()
    path, cfg = configured(tmp_path, relay)
    now = [t(2026, 10, 20, 12)]
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        await gw.store.write(lambda: gw.store.accounts.set_billing_addresses("acme", ["billing@acme.pl"]))
        now[0] = t(2026, 10, 31, 23, 0)  # a question the phone answers three times, in two parts each
        assert (await gw.send(mail(f"{ASKED[3:]}@{DOMAIN}", body="question?"))).error is None
        await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone() == ("delivered",))
        await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
        session = gw.daemon.simulator.core._pick("smpp")

        def sets(text: str) -> list[tuple[Any, ...]]:
            ref = session.server.next_ref()
            return [
                tuple(dict(address_fields(ASKED, OURS), esm_class=e, data_coding=d, short_message=s).items())
                for e, d, s in mo_parts(text, ref, 2)
            ]

        async def segments(n: int) -> None:
            await gw.until(
                lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == n
            )

        slow = sets("Pierwsza " * 20)  # part 2 only after October's bill: a late part
        split = sets("Druga " * 25)  # part 2 three seconds after midnight
        cut = sets("Trzecia " * 20)  # part 2 never: joined after the 00:05 run

        now[0] = t(2026, 10, 31, 23, 57)
        await session.send_part(slow[0])
        await segments(1)
        now[0] = t(2026, 10, 31, 23, 59, 58)
        await session.send_part(split[0])
        await segments(2)
        now[0] = t(2026, 10, 31, 23, 59, 59)
        await session.send_part(cut[0])
        await segments(3)
        now[0] = t(2026, 11, 1, 0, 0, 3)
        await session.send_part(split[1])
        await segments(2)
        now[0] = t(2026, 11, 1, 0, 2, 30)  # the timeout joins the 23:57 one without its part 2
        await segments(1)
        now[0] = t(2026, 11, 1, 0, 5)
        with capture_logs() as logs:
            # The 23:59:59 part still waits: its SMS is October's, so October's bill waits for it.
            assert await job.run_due(gw.store, cfg) == []
        assert any(e["event"] == "billing.waiting_for_parts" for e in logs)
        now[0] = t(2026, 11, 1, 0, 5, 30)
        await segments(0)
        assert [str(m) for m in await job.run_due(gw.store, cfg)] == ["2026-10"]
        now[0] = t(2026, 11, 1, 0, 10)
        await session.send_part(slow[1])  # the late part, in November
        await segments(1)
        now[0] = t(2026, 11, 1, 0, 15, 30)
        await segments(0)
        await gw.until(lambda: sum(ANNA in r for _, r, _ in sink.messages) == 4)
        late_mail = parsed(next(raw for _, r, raw in reversed(sink.messages) if ANNA in r))
        assert "2026-10-31 23:57" in late_mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    assert brief(lines(path, "2026-10")) == [
        ("2026-10-31", "23:00:00", "MT", ANNA, "1", ""),
        ("2026-10-31", "23:57:00", "MO-reply", ASKED, "1", ""),
        ("2026-10-31", "23:59:58", "MO-reply", ASKED, "2", ""),
        ("2026-10-31", "23:59:59", "MO-reply", ASKED, "1", ""),
    ]
    assert brief(lines(path, "2026-11")) == [
        ("2026-11-01", "00:10:00", "MO-reply", ASKED, "1", "late part of the SMS of 2026-10-31 23:57:00")
    ]
