"""An SMSC outage is told where admins look: since when a link is down, what waits for it, its end.

An operator's night: the SMSC gone 20 minutes, 110 SMS waiting. Only /healthz, `status` ("reconnecting
… last error …", whose time moved with each retry, so a 30-s blip and a 20-minute outage read alike)
and a metric said so; the panel's dashboard said "Needing attention … Nothing."; the log repeated the
same warning once a minute and, after recovery, only the bind; `queue show` said `queued, attempts 0,
link -` with no why; `queue list --state deferred` was refused for a state `status` had just shown, and
`queue list` gave an SMSC's raw code where `queue show` and the panel give words.

A real daemon with its panel against a real SMPP server (the simulator's) that is killed and started
again on the same port; `smsgw` as a separate process on the same SQLite file; the panel through a real
HTTP client, its "more than a minute" judged by the injected clock of the store. A link whose SMSC
takes each bind and then fails it has a module of its own (test_outage_visible_flapping.py).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from structlog.testing import capture_logs

from gateway.config import SimulatorSection, load_config
from gateway.housekeeping import read_status
from gateway.linkstatus import LinkView
from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.core import SimulatorCore, SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import STAFF, config_text, mail, running_gateway
from tests.fakes.cimd2 import RecordingEvents
from tests.fakes.ports import free_port
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_cimd2_link import section
from tests.test_policy import to
from tests.test_process import smsgw
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

ESME_RSYSERR = 0x08  # a temporary refusal: the part is deferred and tried again


class Clock:
    """The store's clock: the wall clock, moved on by the test."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.ahead


def local(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def stamped(ts: float, zone: str) -> str:
    """As `smsgw status` writes a time: in the gateway's zone, with its offset (logs are in UTC)."""
    iso = datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat(sep=" ", timespec="seconds")
    return f"{iso[:19]} {iso[19:]}"


def written(tmp_path: Path, smsc_port: int, retry_base: float = 0.2) -> Path:
    path = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=smsc_port, extra=WEB)
    path.write_text(text.replace("retry_base_seconds = 0.2", f"retry_base_seconds = {retry_base}"))
    return path


async def test_an_smsc_outage_says_since_when_what_waits_and_when_it_ended(tmp_path: Path) -> None:
    port = free_port()
    path = written(tmp_path, port)
    cfg = load_config(path)
    zone = cfg.gateway.timezone
    clock = Clock()
    with capture_logs() as logs:
        smsc = HappySMSC(port=port)
        await smsc.__aenter__()
        async with running_gateway(cfg, clock) as gw:
            links = LinkView(gw.daemon.dispatcher)
            await gw.until(lambda: links()["main"]["state"] == "active")
            assert links()["main"]["down_since"] is None
            store = gw.store
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
            )
            # The SMSC dies: its connections cut, nothing listening on its port.
            before = clock()
            smsc.drop_all()
            await smsc.__aexit__(None, None, None)
            await gw.until(lambda: links()["main"]["down_since"] is not None)
            since = links()["main"]["down_since"]
            assert before - 1 <= since <= clock(), (before, since)
            assert (await gw.send(mail(to("601123456"), "Waiting for the SMSC"))).error is None
            message_id = store.db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]
            # A few attempts later it is still down since the same moment: the last error's time moved.
            await gw.until(lambda: (links()["main"]["down_attempts"] or 0) >= 3)
            assert links()["main"]["down_since"] == since
            await gw.until(lambda: gw.daemon.dispatcher.backlog == 1)
            await gw.until(
                lambda: (
                    (read_status(cfg.state_dir) or {}).get("links", {}).get("main", {}).get("down_since")
                    == since
                )
            )
            status = await asyncio.to_thread(smsgw, path, "status")
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(message_id))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
                assert (await login(c, STAFF)).status_code == 303
                blip = (await c.get("/")).text  # down for seconds: the links card says so, no alarm
                clock.ahead = 20 * 60  # the store's clock: 20 minutes on
                outage = (await c.get("/")).text
                links_page = (await c.get("/operator/links")).text
            clock.ahead = 0
            # The SMSC is back on its port: the part goes, and the end of the outage is logged once.
            smsc = HappySMSC(port=port)
            await smsc.__aenter__()
            try:
                await smsc.wait_for(1, timeout=20)
                # Up once the session held (`reconnect_max_seconds`, 0.5 s here): then no longer down.
                await gw.until(lambda: links()["main"]["state"] == "active")
                await gw.until(lambda: links()["main"]["down_since"] is None)
            finally:
                await smsc.__aexit__(None, None, None)
    link_line = next(line for line in status.stdout.splitlines() if line.startswith("link main:"))
    assert f"reconnecting, down since {stamped(since, zone)} (" in link_line, link_line
    assert re.search(r"down since [^(]+\(\d+ s, \d+ attempt\(s\)\)", link_line), link_line
    assert status.returncode == 1, status.stdout
    assert shown.returncode == 0, shown.stderr
    assert (
        f"  waiting: no link up for +48601123456 (link main down since {local(since, zone)} (" in shown.stdout
    ), shown.stdout
    assert f"down since {local(since, zone)}" in blip and 'id="link-main"' not in blip
    assert "<p>Nothing.</p>" in blip
    said = re.search(r'<p class="bad" id="link-main">(.*?)</p>', outage, re.S)
    assert said, outage
    assert f"down since {local(since, zone)} (20 min)" in said[1], said[1]
    assert "no link is up: 1 part(s) waiting to go" in said[1], said[1]
    assert f"connect 127.0.0.1:{port}: Connection refused" in said[1], said[1]
    assert "<p>Nothing.</p>" not in outage
    assert f"reconnecting, down since {local(since, zone)} (" in links_page
    downs = [e for e in logs if e["event"] == "smpp.link_down"]
    assert downs and all("down_for" in e for e in downs), downs
    [again] = [e for e in logs if e["event"] == "smpp.up_again"]
    assert again["log_level"] == "warning" and again["attempts"] >= 4, again
    assert re.fullmatch(r"link main up again after \d+ s down \(\d+ attempts\)", again["summary"]), again
    assert f"({again['attempts']} attempts)" in again["summary"]


class SysErrSMSC(FakeSMSC):
    """Answers ESME_RSYSERR, a temporary refusal, to every submit to a number ending in 77."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.destination.endswith("77"):
            session.answer_submit(seq, None, status=ESME_RSYSERR)
        else:
            await super().on_submit(session, seq, sms)


async def test_a_deferred_part_says_its_next_try_and_why_and_queue_list_takes_the_states_status_shows(
    tmp_path: Path,
) -> None:
    async with SysErrSMSC(reject_suffixes=("99",)) as smsc:
        path = written(tmp_path, smsc.port, retry_base=600)
        cfg = load_config(path)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123477"), "Deferred"))).error is None
            assert (await gw.send(mail(to("601123499"), "Refused"))).error is None
            conn = gw.store.db.conn
            await gw.until(
                lambda: conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'deferred'").fetchone()[0] == 1
            )
            await gw.until(lambda: "failed" in gw.states())
            deferred_id, due, error = conn.execute(
                "SELECT message_id, next_attempt_at, error FROM parts WHERE state = 'deferred'"
            ).fetchone()
            failed_id = conn.execute("SELECT id FROM messages WHERE state = 'failed'").fetchone()[0]
            # The commands read the links from the status file, written every STATUS_INTERVAL: wait
            # for one written since the link came up, or `queue show` adds "link main connecting".
            await gw.until(
                lambda: (
                    (read_status(cfg.state_dir) or {}).get("links", {}).get("main", {}).get("state")
                    == "active"
                )
            )
            status = await asyncio.to_thread(smsgw, path, "status")
            listed = await asyncio.to_thread(smsgw, path, "queue", "list", "--state", "deferred")
            everything = await asyncio.to_thread(smsgw, path, "queue", "list")
            shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(deferred_id))
    zone = cfg.gateway.timezone
    assert "deferred 1" in status.stdout, status.stdout
    assert listed.returncode == 0, listed.stderr
    assert [int(line.split()[0]) for line in listed.stdout.splitlines()] == [deferred_id], listed.stdout
    assert error and "ESME_RSYSERR" in error, error
    assert shown.returncode == 0, shown.stderr
    waiting = [line for line in shown.stdout.splitlines() if line.startswith("  waiting: ")]
    assert len(waiting) == 1, shown.stdout
    assert waiting == [f"  waiting: next try {local(due, zone)}, after the error above"], shown.stdout
    part = next(line for line in shown.stdout.splitlines() if line.startswith("part 1: deferred"))
    assert part.endswith("error the operator's system failed (ESME_RSYSERR, 0x08)"), part
    refused = next(line for line in everything.stdout.splitlines() if line.split()[0] == str(failed_id))
    assert "(the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B))" in refused, refused
    assert "(ESME_RINVDSTADR (0x0B))" not in everything.stdout


async def test_a_cimd2_link_keeps_since_when_it_is_down_and_logs_its_return(tmp_path: Path) -> None:
    port = free_port()
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = Cimd2Server(core, port=port, retry_delay=0.02)
    await server.start()
    link, events = Cimd2Link(section(port), password="secret"), RecordingEvents()
    with capture_logs() as logs:
        await link.start(events)
        try:
            await events.wait_for(lambda: link.state is LinkState.ACTIVE)
            assert link.stats().down_since is None
            await server.stop()
            await events.wait_for(lambda: link.stats().down_attempts >= 3)
            since = link.stats().down_since
            assert since is not None
            server = Cimd2Server(core, port=port, retry_delay=0.02)
            await server.start()
            await events.wait_for(lambda: link.state is LinkState.ACTIVE and link.stats().down_since is None)
        finally:
            await link.stop()
            await server.stop()
            await core.close()
    waits = [e for e in logs if e["event"] == "cimd2.reconnect_in"]
    assert waits and all("down_for" in e for e in waits), waits
    [again] = [e for e in logs if e["event"] == "cimd2.up_again"]
    assert again["attempts"] >= 4, again
    assert re.fullmatch(r"link c2 up again after \d+ s down \(\d+ attempts\)", again["summary"]), again
