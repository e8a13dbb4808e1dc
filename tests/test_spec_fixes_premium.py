"""A service removed before its address confirmed (R-4.3, R-7.3): its kept SMS go to the fallback,
and `smsgw mo list` says so rather than that they are still kept for the unconfirmed address.

The commands run through the command line on a real SQLite file; the vote comes in through
`GatewayEvents`, as a link hands it up, in between.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.common import open_store
from gateway.config import parse_config
from gateway.events import GatewayEvents
from gateway.notifier import Notifier
from smsc.base import Ack, InboundSms
from tests.test_premium import BASE, CLIENT, FALLBACK, PHONE, run_cli

PREMIUM = f'fallback_address = "{FALLBACK}"\n'


async def vote(tmp_path: Path, text: str) -> None:
    """A phone's premium SMS, stored and handled as the daemon does."""
    cfg = parse_config(
        BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"') + PREMIUM, source="t"
    )
    store = open_store(cfg)
    events = GatewayEvents(store, Notifier(store, cfg))
    sms = InboundSms(source=PHONE, destination="7355", text=text)
    assert await events.on_deliver("main", sms) is Ack.OK
    events.on_acked("main", sms, True)
    await store.drain()
    store.close()


def mo_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run_cli(tmp_path, "mo", "list", premium=PREMIUM) == 0
    return capsys.readouterr().out


async def test_mo_list_says_a_removed_services_kept_sms_went_to_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(tmp_path, "account", "add", "acme", premium=PREMIUM) == 0
    assert run_cli(tmp_path, "premium", "add", "KPAB1", "--account", "acme", "--email", CLIENT) == 0
    await vote(tmp_path, "KPAB1 vote A")
    assert f"(KPAB1: kept until {CLIENT} confirms)" in mo_notes(tmp_path, capsys)

    assert run_cli(tmp_path, "premium", "remove", "KPAB1", premium=PREMIUM) == 0
    assert "1 kept SMS sent to the fallback address" in capsys.readouterr().out
    listed = mo_notes(tmp_path, capsys)
    assert "kept until" not in listed
    assert f"sent to the fallback address {FALLBACK}" in listed
    assert "the service was removed before its address confirmed" in listed


async def test_a_kept_sms_mailed_after_confirmation_no_longer_says_it_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its note said "kept until … confirms" after the address had confirmed and the SMS was
    mailed; the billing file showed it so, and a later refusal of that mail was added to it."""
    from gateway.premium import handlers

    assert run_cli(tmp_path, "account", "add", "acme", premium=PREMIUM) == 0
    assert run_cli(tmp_path, "premium", "add", "KPAB1", "--account", "acme", "--email", CLIENT) == 0
    await vote(tmp_path, "KPAB1 vote A")
    cfg = parse_config(
        BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"') + PREMIUM, source="t"
    )
    store = open_store(cfg)
    try:
        conn = store.db.conn
        (service_id,) = conn.execute("SELECT id FROM premium_services WHERE password = 'KPAB1'").fetchone()
        with store.db.transaction():
            service = handlers.repo(store).service(service_id)
            assert handlers.forward_awaiting(store, cfg, service) == 1
        (state, note) = conn.execute("SELECT state, note FROM premium_mo").fetchone()
    finally:
        store.close()
    assert state == "mailed" and "confirms" not in (note or ""), note
    assert f"kept until {CLIENT} confirmed" in note
