"""An `[[smsc]]` block pointed at another SMSC (another port here) under the same name, while the old
SMSC had taken the first part of a long SMS and a short SMS awaited its receipt. Only a change of
protocol counted as another bind: the long SMS's parts 2 and 3 went to the new SMSC under the first
part's reference (the phone never joined them), nothing was logged, and the new SMSC's receipt for
an id of its own that the old one had given too was taken for the old SMS. The daemon against two
built-in simulators over TCP and a real SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.configlinks import SimulatorSection
from smsc.base import LinkState
from smsc.simulator import Simulator
from smsc.simulator.control import execute
from tests.conftest import DOMAIN, config_text, mail, running_gateway, smsc_link


@asynccontextmanager
async def simulator(tmp_path: Path, name: str) -> AsyncIterator[Simulator]:
    # Reports an hour late: the SMS sent before the change still await theirs at the restart.
    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=3600)
    sim = Simulator(cfg, tmp_path / name / "simulator.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def concat(sim: Simulator) -> list[tuple[int, int]]:
    return [(r["concat"]["ref"], r["concat"]["seq"]) for r in sim.core.records if r["concat"]]  # type: ignore[index]


async def test_a_link_pointed_at_another_smsc_sends_a_half_sent_long_sms_again_whole_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with simulator(tmp_path, "a") as old, simulator(tmp_path, "b") as new:
        text = config_text(tmp_path, smsc_port=old.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None  # three parts
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
            await gw.until(lambda: gw.states() == ["submitted", "submitted"])
            (short_id,) = gw.store.db.conn.execute(
                "SELECT smsc_id FROM parts WHERE message_id = 2"
            ).fetchone()
        # As when the daemon stopped right after the old SMSC took the long SMS's first part.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
                " WHERE message_id = 1 AND seq > 1"
            )
        ((old_ref, _),) = {(ref, 0) for ref, _seq in concat(old)}
        new.core._next_id = int(short_id) - 1  # the new SMSC counts its ids as the old one did
        repointed = text.replace(f"port = {old.smpp_port}", f"port = {new.smpp_port}", 1)
        config = tmp_path / "config.toml"
        config.write_text(repointed)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        was, now = (f"SMPP localhost:{port} (login smsgw)" for port in (old.smpp_port, new.smpp_port))
        said = f"link main was {was} and is {now} now, another SMSC bind under the same name"
        err = capsys.readouterr().err
        (warned,) = [line for line in err.splitlines() if said in line] or [err]
        assert "1 long SMS the old SMSC took part of go again whole by the new one" in warned, warned
        assert (
            "1 SMS the old SMSC took await reports that only it sends: they wait under link main@" in warned
        )
        assert "If it is the same SMSC reached another way (its host name for its IP" in warned, warned
        with capture_logs() as logs:
            async with running_gateway(parse_config(repointed, base_dir=tmp_path)) as gw:
                await gw.until(lambda: len(concat(new)) == 3)
                await gw.until(lambda: gw.states()[0] == "submitted")
                ids = "SELECT COUNT(smsc_id) FROM parts WHERE message_id = 1"
                await gw.until(lambda: gw.store.db.conn.execute(ids).fetchone()[0] == 3)
                first = gw.store.db.conn.execute(
                    "SELECT smsc_id FROM parts WHERE message_id = 1 AND seq = 1"
                ).fetchone()[0]
                assert first == short_id  # the new SMSC gave the old one's id to the long SMS's part 1
                answer = await execute(new.core, {"op": "report", "message_id": first, "status": "failed"})
                assert answer["ok"], answer
                await gw.until(lambda: gw.states()[0] == "failed")
                states = gw.states()
                links = dict(gw.store.db.conn.execute("SELECT message_id, link FROM parts WHERE seq = 1"))
        # The old SMSC configured again, under another name: the SMS it took get its receipt.
        both = repointed + smsc_link("old", old.smpp_port)
        with capture_logs() as later:
            async with running_gateway(parse_config(both, base_dir=tmp_path)) as gw:
                await gw.until(lambda: gw.daemon.links["old"].state is LinkState.ACTIVE)
                report = {"op": "report", "message_id": short_id, "status": "delivered"}
                assert (await execute(old.core, report))["ok"]
                await gw.until(lambda: gw.states()[1] == "delivered")
    (changed,) = [e for e in logs if e["event"] == "config.link_endpoint_changed"]
    assert (changed["waiting"], changed["long_sms_sent_again"]) == (1, 1), changed
    # The whole SMS again by the new SMSC, under a new reference: not its last two parts under the first's.
    assert sorted(seq for _ref, seq in concat(new)) == [1, 2, 3]
    assert {ref for ref, _seq in concat(new)} != {old_ref}
    # The short SMS the old SMSC took still awaits its receipt, apart from the new SMSC's ids.
    assert states[1] == "submitted", states
    assert links == {1: "main", 2: f"main@smsgw@localhost:{old.smpp_port}"}, links
    (kept,) = [e for e in later if e["event"] == "dlr.old_endpoints_waiting"]
    assert kept["waiting"] == {f"main@smsgw@localhost:{old.smpp_port}": 1}, kept
    assert not [
        e for e in later if e["event"] in ("dlr.links_gone", "dlr.unmatched", "config.link_endpoint_changed")
    ]


async def test_the_same_endpoint_under_the_same_name_moves_nothing(tmp_path: Path) -> None:
    async with simulator(tmp_path, "a") as sim:
        text = config_text(tmp_path, smsc_port=sim.smpp_port)
        for _start in range(2):
            with capture_logs() as logs:
                async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
                    assert (await gw.send(mail(f"601123456@{DOMAIN}", "short"))).error is None
                    await gw.until(lambda: gw.states()[-1] == "submitted")
            assert not [e for e in logs if str(e["event"]).startswith("config.link_")], logs


async def test_check_config_names_the_retired_link_the_sms_wait_under(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Another type's bind noted under the first name the old bind's SMS would take: they go under "~2".
    from gateway.linkbinds import PREFIX

    async with simulator(tmp_path, "a") as old, simulator(tmp_path, "b") as new:
        text = config_text(tmp_path, smsc_port=old.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
            await gw.until(lambda: gw.states() == ["submitted"])
        first = f"main@smsgw@localhost:{old.smpp_port}"
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "INSERT INTO billing_state (key, value) VALUES (?, ?)",
                (PREFIX + first, f"cimd2|loopback|{old.smpp_port}|smsgw"),
            )
        repointed = text.replace(f"port = {old.smpp_port}", f"port = {new.smpp_port}", 1)
        config = tmp_path / "config.toml"
        config.write_text(repointed)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        err = capsys.readouterr().err
        assert f"they wait under link {first}~2," in err, err
        async with running_gateway(parse_config(repointed, base_dir=tmp_path)) as gw:
            (link,) = gw.store.db.conn.execute("SELECT link FROM parts").fetchone()
    assert link == f"{first}~2"
