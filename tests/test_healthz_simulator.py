"""/healthz with the built-in simulator running: its links are judged like any SMSC's.

/healthz once took the simulator as always up. With the shipped config plus an operator's link for
a prefix (the usual first step from the demo to production), that link down left its SMS waiting
while the load balancer heard "ok"; so did the link to the simulator itself pointed at a wrong port.
`smsgw status` said trouble all along. A real daemon with its simulator over TCP, /healthz through a
real HTTP client.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from gateway.config import Config, load_config
from gateway.housekeeping import read_status
from tests.conftest import config_text, free_port, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC
from tests.test_status_pacing import queue_pinned_answer
from tests.test_web_browser import WEB


def with_simulator(tmp_path: Path, own_port: int, sim_link_port: int | None = None) -> Path:
    """The prefix link "main" (+4860, exclusive) to `own_port`, and "sim" to the built-in simulator
    (at its own port unless `sim_link_port` says otherwise)."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path, smsc_port=own_port, smsc_extra='prefixes = ["+4860"]\nexclusive = true', extra=WEB
    )
    simulator = (
        f'[simulator]\nenabled = true\nhost = "127.0.0.1"\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\n'
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\n'
    )
    assert "[simulator]\nenabled = false\n" in text
    text = text.replace("[simulator]\nenabled = false\n", simulator)
    text += smsc_link("sim", sim_link_port or smpp)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    return path


def link_state(cfg: Config, name: str) -> str | None:
    return (read_status(cfg.state_dir) or {}).get("links", {}).get(name, {}).get("state")


async def test_an_operator_link_down_beside_the_simulator_is_503(tmp_path: Path) -> None:
    cfg = load_config(with_simulator(tmp_path, own_port=free_port()))
    async with running_gateway(cfg) as gw:
        await gw.until(lambda: link_state(cfg, "sim") == "active")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            health = await c.get("/healthz")
    assert health.status_code == 503, health.text
    assert health.text == "no link is bound for +4860\n"


async def test_the_link_to_the_simulator_down_is_503(tmp_path: Path) -> None:
    # Both links point where nothing listens: the simulator runs, yet no SMS can leave.
    cfg = load_config(with_simulator(tmp_path, own_port=free_port(), sim_link_port=free_port()))
    async with running_gateway(cfg) as gw:
        await gw.until(lambda: link_state(cfg, "sim") not in (None, "active"))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            health = await c.get("/healthz")
    assert health.status_code == 503, health.text
    assert health.text == "no link is bound\n"


async def test_a_premium_answer_waiting_for_its_votes_link_down_is_503(tmp_path: Path) -> None:
    # As `smsgw status` says (tests/test_status_pacing.py): the link "main" up takes +4951 too,
    # but the answer may leave by its vote's link "b" alone, and that one is down.
    async with HappySMSC() as smsc:
        down = smsc_link("b", free_port(), 'prefixes = ["+4951"]')
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=smsc.port, extra=WEB) + down)
        path.chmod(0o640)
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: link_state(cfg, "main") == "active")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                before = await c.get("/healthz")

                await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
                after = await c.get("/healthz")
    assert (before.status_code, before.text) == (200, "ok\n")
    assert (
        after.status_code == 503
        and after.text == "no link is bound for 1 part(s) pinned to link b (premium answers)\n"
    )
