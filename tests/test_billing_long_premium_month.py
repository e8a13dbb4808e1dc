"""A long premium vote is billed by when its phone sent it (its first part), as a long reply is
(tests/test_billing_long_mo_month.py), not by when its parts were joined (R-5.2: every SMS of the
month): parts straddling local midnight, and a set the reassembly timeout joins after midnight. The
daemon with its built-in SMSC and an injected clock receives the parts; `smsgw billing run` and
`smsgw premium stats` read them as processes, and again after the retention purge deleted the rows
of table mo (the vote's money record keeps the time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.config import Config, parse_config
from gateway.premium import handlers
from gateway.retentionpurge import purge_before
from gateway.store.db import Store
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.billing_reader import read
from tests.billing_world import cli
from tests.conftest import Running, Sink, free_port, running_gateway, smtp_sink
from tests.test_billing_long_mo_month import configured, t
from tests.test_premium_loop import CLIENT, reply_to, smtp
from tests.test_two_way import parsed

NUMBER, VOTER, LATE_VOTER = "7355", "+48601999888", "+48601777666"


def premium_lines(path: Path, month: str) -> list[tuple[str, ...]]:
    res = cli(path, "billing", "run", "--month", month)
    assert res.returncode == 0, res.stderr
    sms = read((path.parent / "state" / "billing" / month / "acme.txt").read_bytes()).sms
    return [
        (s["date"], s["time"], s["user_or_phone"], s["parts"], s["price_pln"])
        for s in sms
        if s["kind"] == "premium-MO"
    ]


def stats_total(path: Path, month: str) -> str:
    """The total line of `smsgw premium stats`: MOs, parts, price, commission."""
    res = cli(path, "premium", "stats", "--month", month)
    assert res.returncode == 0, res.stderr
    return " ".join(next(line for line in res.stdout.splitlines() if line.startswith("total")).split())


def premium_configured(tmp_path: Path, relay: int) -> tuple[Path, Config]:
    """The billing world's config (`configured`) with NUMBER a premium number."""
    path, _plain = configured(tmp_path, relay)
    text = path.read_text() + f'\n[premium]\nnumbers = ["{NUMBER}"]\nfallback_address = "ops@example.com"\n'
    path.write_text(text)
    return path, parse_config(text, source="test", base_dir=tmp_path)


async def verified_service(gw: Running, sink: Sink, cfg: Config) -> Any:
    """Acme's premium service KP123 on NUMBER (what `smsgw premium add` does, on the daemon's loop:
    its rows carry the injected clock), confirmed by its client's mail; then the built-in SMSC's SMPP
    session the phones' parts are sent on."""
    db = gw.store.db.conn

    def service() -> None:
        s = gw.store
        s.accounts.set_billing_addresses("acme", ["billing@acme.pl"])
        r = handlers.repo(s)
        acme = s.accounts.get_account("acme")
        assert acme is not None
        svc = r.service(r.add_service("KP123", acme.id, CLIENT, [NUMBER], [CLIENT]))
        handlers.ask_verification(s, cfg, svc, "acme")  # type: ignore[arg-type]

    await gw.store.write(service)
    await gw.until(lambda: any(CLIENT in r for _, r, _ in sink.messages))
    ask = parsed(next(raw for _, r, raw in sink.messages if CLIENT in r))
    assert (await smtp(gw.port, *reply_to(ask, "yes"))).error is None  # type: ignore[attr-defined]
    await gw.until(lambda: db.execute("SELECT verified_at FROM premium_services").fetchone()[0] is not None)
    await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
    return gw.daemon.simulator.core._pick("smpp")


async def test_a_long_premium_vote_goes_by_its_first_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    relay = free_port()
    path, cfg = premium_configured(tmp_path, relay)
    now = [t(2026, 10, 20, 12)]
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        session = await verified_service(gw, sink, cfg)

        def sets(phone: str, text: str) -> list[tuple[Any, ...]]:
            ref = session.server.next_ref()
            return [
                tuple(
                    dict(address_fields(phone, NUMBER), esm_class=e, data_coding=d, short_message=s).items()
                )
                for e, d, s in mo_parts(text, ref, 2)
            ]

        async def segments(n: int) -> None:
            await gw.until(
                lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == n
            )

        cut = sets(LATE_VOTER, "KP123 " + "glos na B " * 20)  # part 2 never: the timeout joins it
        split = sets(VOTER, "KP123 " + "glos na A " * 20)  # part 2 five seconds after midnight

        now[0] = t(2026, 10, 31, 23, 57)
        await session.send_part(cut[0])
        await segments(1)
        now[0] = t(2026, 10, 31, 23, 59, 58)
        await session.send_part(split[0])
        await segments(2)
        now[0] = t(2026, 11, 1, 0, 0, 3)
        await session.send_part(split[1])
        await segments(1)
        now[0] = t(2026, 11, 1, 0, 2, 30)  # the timeout joins the 23:57 one without its part 2
        await segments(0)
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 2)

    october = [
        ("2026-10-31", "23:57:00", LATE_VOTER, "1", "3.00"),
        ("2026-10-31", "23:59:58", VOTER, "2", "6.00"),
    ]
    assert premium_lines(path, "2026-10") == october
    assert premium_lines(path, "2026-11") == []
    assert stats_total(path, "2026-10") == "total 2 3 9.00 3.30"
    assert stats_total(path, "2026-11") == "total 0 0 0.00 0.00"

    # The retention purge deletes the rows of table mo; the money records still say when.
    store = Store.open(cfg.db_path, clock=lambda: t(2027, 6, 1))
    try:
        await purge_before(store, t(2027, 5, 1))
        assert store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone() == (0,)
    finally:
        store.close()
    assert premium_lines(path, "2026-10") == october
    assert stats_total(path, "2026-10") == "total 2 3 9.00 3.30"
