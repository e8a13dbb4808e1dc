"""What /metrics and the log say of SMS from phones.

`smsgw_mo_total` counted a long MO once per part (`joined`) and again as its whole: 6 SMS, one of
them in 3 parts, summed to 9, while the panel said 6. And the mo.* lines named the phone (a source
field, or inside a reason's words), so that a number `smsgw phone forget` erased stayed in the log.
Through the daemon with its simulator injecting the MOs over TCP, /metrics scraped over HTTP, the
log as the daemon's own lines (structlog), on an injected clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from gateway import housekeeping as housekeeping_module
from gateway.config import Config, parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_kept_answers import SETTLED, T0, looked
from tests.test_web_browser import WEB

PHONE = "+48601123456"  # texted by the staff member: its answers have a conversation
STRANGER = "+48609999111"  # writes to our number unasked
OURS = "+48100200300"
LONG = "segmented answer " * 25  # 425 characters: three parts


def two_way_config(tmp_path: Path, relay: int, replies: str = "") -> Config:
    """The daemon with its simulator (as `tests.test_kept_answers.flood_config`) and the panel's
    listener, which serves /metrics."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay, extra=f"\n{WEB}\n[replies]\n{replies}\n")
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def phone_sends(gw: Any, text: str, *, source: str | None = None, parts: int | None = None) -> None:
    """An MO through the simulator's control port, from PHONE in answer to the last SMS or from
    `source` to our number; returns once the gateway has settled it."""
    db = gw.store.db.conn
    before = len(db.execute(SETTLED).fetchall())
    command: dict[str, Any] = {"op": "mo", "text": text}
    if source is None:
        command["reply_to_last"] = True
    else:
        command.update(source=source, destination=OURS)
    if parts is not None:
        command["parts"] = parts
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await gw.until(lambda: len(db.execute(SETTLED).fetchall()) == before + 1)


async def texted(gw: Any) -> None:
    """The staff member's SMS to PHONE, taken by the simulator: the phone's answers have its conversation."""
    asked = mail(f"{PHONE.removeprefix('+48')}@{DOMAIN}", body="Czy 10:00 pasuje?")
    assert (await gw.send(asked)).error is None
    await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)


def mo_ids(gw: Any, state: str) -> list[int]:
    return [r[0] for r in gw.store.db.conn.execute("SELECT id FROM mo WHERE state = ? ORDER BY id", (state,))]


async def test_a_long_mo_is_counted_once_in_smsgw_mo_total(tmp_path: Path) -> None:
    # The traffic: 3 answers, 2 SMS from a stranger, and one from a third phone in 3 parts.
    relay = free_port()
    async with smtp_sink(relay), running_gateway(two_way_config(tmp_path, relay)) as gw:
        await texted(gw)
        for n in range(3):
            await phone_sends(gw, f"Reply number {n} from phone")
        for n in range(2):
            await phone_sends(gw, f"Who is this {n}", source=STRANGER)
        await phone_sends(gw, LONG, source="+48601100005", parts=3)
        joined = len(mo_ids(gw, "joined"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            scraped = (await c.get("/metrics")).text
    assert joined == 3  # the parts were there to be counted
    families = {f.name: f for f in text_string_to_metric_families(scraped)}
    mo = families["smsgw_mo"]
    received = {s.labels["outcome"]: s.value for s in mo.samples if s.name == "smsgw_mo_total"}
    assert received == {"mailed": 3.0, "unmatched": 3.0}, received
    assert "joined" not in {s.labels["state"] for s in families["smsgw_mo_waiting"].samples}
    assert "a long one once" in mo.documentation


def digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def naming_a_phone(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines with a field that shows a phone's national digits, whole or spaced (+48 601 123 456)."""
    phones = [PHONE.removeprefix("+48"), STRANGER.removeprefix("+48")]
    return [e for e in lines if any(p in digits(v) for v in e.values() for p in phones)]


async def test_mo_lines_name_the_mo_not_the_phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A phone at its hourly limit (1): an answer mailed, the next kept (mo.throttled), a long one
    # kept too (mo.reassembled), all three mailed in one an hour later (mo.kept_mailed); a stranger
    # nobody texted (mo.unmatched, whose reason said "no SMS was sent to +48609999111 from ...").
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = two_way_config(tmp_path, relay, "mails_per_phone_per_hour = 1")
    with structlog.testing.capture_logs() as logs:
        async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
            await texted(gw)
            for text in ("Tak", "Jednak nie"):
                now[0] += 60
                await phone_sends(gw, text)
            now[0] += 60
            await phone_sends(gw, LONG, parts=3)
            await phone_sends(gw, "Who is this?", source=STRANGER)
            throttled, (unmatched,) = mo_ids(gw, "throttled"), mo_ids(gw, "unmatched")
            assert len(throttled) == 2
            now[0] += 3601  # the phone quiet for an hour: its kept answers go in one mail
            await sink.wait(2)
            await looked()
    lines = [e for e in logs if str(e["event"]).startswith("mo.")]
    assert naming_a_phone(lines) == []
    by_event: dict[str, list[dict[str, Any]]] = {}
    for e in lines:
        by_event.setdefault(str(e["event"]), []).append(e)
    assert [e["mo"] for e in by_event["mo.throttled"]] == throttled
    (reassembled,) = by_event["mo.reassembled"]
    assert reassembled["mo"] == throttled[1] and reassembled["parts"] == 3
    (kept,) = by_event["mo.kept_mailed"]
    assert kept["mo"] == throttled[0] and kept["answers"] == 2
    (said,) = by_event["mo.unmatched"]
    assert said["mo"] == unmatched
    words = f"no SMS was sent to the sender of MO {unmatched} from {OURS} within the reply window"
    assert said["reason"].startswith(words), said


async def test_kept_answers_no_conversation_took_are_logged_by_their_mo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stranger floods our number, its answers mailed to the fallback address: the first mailed
    # (mo.fallback), the next kept (mo.throttled), mailed an hour later (mo.kept_fallback, which
    # named the phone).
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    replies = 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"'
    cfg = two_way_config(tmp_path, relay, replies)
    with structlog.testing.capture_logs() as logs:
        async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
            for text in ("Who is this?", "Hello?", "Anybody?"):
                now[0] += 60
                await phone_sends(gw, text, source=STRANGER)
            kept = mo_ids(gw, "throttled")
            assert len(kept) == 2
            now[0] += 3601
            await sink.wait(2)
            await looked()
    lines = [e for e in logs if str(e["event"]).startswith("mo.")]
    assert naming_a_phone(lines) == []
    assert [e["mo"] for e in lines if e["event"] == "mo.throttled"] == kept
    (mailed,) = [e for e in lines if e["event"] == "mo.kept_fallback"]
    assert mailed["mo"] == kept[0] and mailed["answers"] == 2 and mailed["to"] == "ops@example.com"
