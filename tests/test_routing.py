"""Several SMSC links: longest-prefix routing, failover, status, and the shipped config over CIMD2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.routing import Router
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC, HeldSMSC

ROOT = Path(__file__).resolve().parents[1]


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def test_router_prefers_the_longest_prefix_then_config_order() -> None:
    # +4860 beats +48; links of equal prefix keep config order; default links come last.
    r = Router([("a", ["+48"]), ("b", ["+4860"]), ("c", []), ("d", ["+4860"])])
    assert r.candidates("+48601123456") == ["b", "d", "a", "c"]
    assert r.candidates("+48511123456") == ["a", "c"]
    assert r.candidates("+4915112345678") == ["c"]


def two_links(tmp_path: Path, port_a: int, port_b: int, window: int = 10) -> str:
    text = config_text(tmp_path, smsc_port=port_a, smsc_extra='prefixes = ["+4860"]')
    text = text.replace("window = 10", f"window = {window}", 1)  # the prefix link's
    return (
        text
        + f"""
[[smsc]]
name = "backup"
type = "smpp"
port = {port_b}
system_id = "smsgw"
password = "secret"
max_per_second = 1000
reconnect_min_seconds = 0.1
reconnect_max_seconds = 0.5
"""
    )


async def test_numbers_follow_their_prefix(tmp_path: Path) -> None:
    # +4860… goes to the link for that prefix; other numbers take the default link.
    async with HappySMSC() as a, HappySMSC() as b:
        cfg = parse_config(two_links(tmp_path, a.port, b.port), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            rcpts = [to("601123456"), to("511123456")]
            await gw.send(mail(rcpts, "Routed"), rcpts)
            await a.wait_for(1)
            await b.wait_for(1)
            assert a.received[0].destination.endswith("48601123456")
            assert b.received[0].destination.endswith("48511123456")


async def test_the_parts_of_a_long_sms_leave_by_one_link_when_it_is_busy(tmp_path: Path) -> None:
    # The prefix link's window holds one part: the next parts of the SMS wait for that link rather
    # than leave by the default link (a phone joins the parts of one SMS from one originator; an
    # SMSC that rewrites the sender would leave it two halves). Another number still spills.
    text = "Zebranie przeniesione na czwartek o 10:00 w sali B. " * 6  # three parts
    async with HeldSMSC() as a, HappySMSC() as b:
        cfg = parse_config(two_links(tmp_path, a.port, b.port, window=1), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(to("601123456"), text))
            await a.wait_for(1)
            await gw.send(mail(to("601000222"), "Spills"))
            await b.wait_for(1)
            for k in (2, 3):
                a.answer(1)
                await a.wait_for(k)
            a.answer(1)
            assert [s.destination[-9:] for s in b.received] == ["601000222"]
            assert [s.destination[-9:] for s in a.received] == ["601123456"] * 3
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "submitted"])


async def test_a_link_that_goes_down_fails_over_to_the_next(tmp_path: Path) -> None:
    # With the prefix's own link down, its numbers go through the other link; nothing fails.
    port_a = free_port()
    async with HappySMSC() as b:
        cfg = parse_config(two_links(tmp_path, port_a, b.port), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(to("601123456"), "Via backup"))
            await b.wait_for(1)
            await gw.until(lambda: gw.states() == ["delivered"])

            def status() -> dict[str, Any]:
                path = cfg.state_dir / "status.json"
                return json.loads(path.read_text()) if path.exists() else {"links": {}}

            # The file is rewritten every few seconds: wait for the one written since the backup came up.
            await gw.until(lambda: status()["links"].get("backup", {}).get("state") == "active")
            assert status()["links"]["main"]["state"] != "active"


async def test_shipped_config_switched_to_cimd2_reaches_the_simulator(tmp_path: Path) -> None:
    # The shipped config with its link set to CIMD2: the SMS reaches the built-in simulator
    # over CIMD2 and the status report comes back as "delivered".
    smpp, cimd2, control, smtp = free_port(), free_port(), free_port(), free_port()
    text = (ROOT / "config.toml").read_text()
    text = text.replace("smpp_port = 2775", f"smpp_port = {smpp}").replace(
        "cimd2_port = 9971", f"cimd2_port = {cimd2}"
    )
    text = text.replace('type = "smpp"', 'type = "cimd2"').replace("port = 2775", f"port = {cimd2}")
    text = text.replace("control_port = 2776", f"control_port = {control}")
    text = text.replace('listen = "127.0.0.1:2525"', f'listen = "127.0.0.1:{smtp}"')
    text = text.replace('submission_listen = "127.0.0.1:2587"', 'submission_listen = "127.0.0.1:0"')
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{free_port()}"')
    text = text.replace('state_dir = "var"', f'state_dir = "{tmp_path / "state"}"')
    text = text.replace('log = "var/simulator.jsonl"', f'log = "{tmp_path / "sim.jsonl"}"')
    cfg = parse_config(text, base_dir=tmp_path)
    assert cfg.smsc[0].type == "cimd2"
    async with running_gateway(cfg) as gw:
        res = await gw.send(mail(to("601123456"), "Over CIMD2 with ąę"), sender="demo@example.com")
        assert res.error is None
        await gw.until(lambda: gw.states() == ["delivered"])
        record = json.loads((tmp_path / "sim.jsonl").read_text().splitlines()[0])
        assert record["protocol"] == "cimd2" and record["text"] == "Over CIMD2 with ąę"


async def test_the_rest_of_a_long_sms_half_sent_before_a_restart_leaves_by_the_same_link(
    tmp_path: Path,
) -> None:
    # The link the first parts took was remembered in memory alone: after a restart (crash or
    # upgrade) the rest left by whichever link came up first, and an SMSC that rewrites the
    # originator left the phone two halves. The store knows which link took them.
    text = "Zebranie przeniesione na czwartek o 10:00 w sali B. " * 6  # three parts
    port_a, port_b = free_port(), free_port()
    async with HappySMSC(port=port_b) as b:
        slow = two_links(tmp_path, port_a, port_b).replace("max_per_second = 1000", "max_per_second = 0.2")
        async with running_gateway(parse_config(slow, base_dir=tmp_path)) as gw:
            await gw.send(mail(to("601123456"), text))  # the prefix link is down: the backup takes it
            await b.wait_for(1)
            taken = "SELECT COUNT(*) FROM parts WHERE state IN ('submitted', 'delivered')"
            await gw.until(lambda: gw.store.db.conn.execute(taken).fetchone()[0] >= 1)
        # Stopped while the backup's pacing held part 2 (one part per 5 s). Restarted with the
        # prefix link up at once, first in the routes, and the backup a second later: parts 2
        # and 3 still go by the backup.
    async with HappySMSC(port=port_a) as a:
        async with running_gateway(parse_config(two_links(tmp_path, port_a, port_b), base_dir=tmp_path)):
            await a.wait_until(lambda: bool(a.sessions), timeout=10)
            await asyncio.sleep(1.0)
            async with HappySMSC(port=port_b) as b2:
                await b2.wait_for(2, timeout=20)
                assert a.received == []
                assert [s.destination[-9:] for s in b2.received] == ["601123456"] * 2
