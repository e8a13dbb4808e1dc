"""An `[[smsc]]` block whose `type` changed (smpp <-> cimd2) under the same name while it had work out:
another SMSC bind, as a new name would be. The rest of a long SMS its old bind took a part of went on
by the new protocol's session under the old reference (to another SMSC, whose originator the phone may
not join with the first part's), and nothing said that the reports awaited of the old bind can never
come by the new session. The daemon against the built-in simulator (its SMPP and CIMD2 ports) over
TCP and a real SQLite file."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.configlinks import SimulatorSection
from smsc.simulator import Simulator
from smsc.simulator.control import execute
from tests.conftest import DOMAIN, config_text, mail, running_gateway, smtp_sink
from tests.test_premium_answer_rules import Premium, premium
from tests.test_premium_loop import reply_to, smtp


@asynccontextmanager
async def simulator(tmp_path: Path) -> AsyncIterator[Simulator]:
    # Reports an hour late: the SMS sent before the change still await theirs at the restart.
    cfg = SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0, dlr_delay_seconds=3600)
    sim = Simulator(cfg, tmp_path / "var" / "simulator.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def parts_by(sim: Simulator, protocol: str) -> list[dict[str, object]]:
    return [r for r in sim.core.records if r["protocol"] == protocol]


async def test_a_link_switched_to_another_protocol_sends_a_half_sent_long_sms_again_whole_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        text = config_text(tmp_path, smsc_port=sim.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None  # three parts
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
            await gw.until(lambda: gw.states() == ["submitted", "submitted"])
        # As when the daemon stopped right after the SMSC took the long SMS's first part.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
                " WHERE message_id = 1 AND seq > 1"
            )
        (old_ref,) = {r["concat"]["ref"] for r in parts_by(sim, "smpp") if r["concat"]}  # type: ignore[index]
        switched = text.replace('type = "smpp"', 'type = "cimd2"', 1).replace(
            f"port = {sim.smpp_port}", f"port = {sim.cimd2_port}", 1
        )
        config = tmp_path / "config.toml"
        config.write_text(switched)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        warning = 'smsgw: warning: [[smsc]] "main": at the next start, link main was SMPP and is CIMD2 now'
        (warned,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith(warning)]
        assert "1 SMS it sent over SMPP await reports that only a session of SMPP brings" in warned
        assert "1 long SMS it sent part of over SMPP go again whole under a new reference" in warned
        with capture_logs() as logs:
            async with running_gateway(parse_config(switched, base_dir=tmp_path)) as gw:
                await gw.until(lambda: len(parts_by(sim, "cimd2")) == 3)
                states = dict(gw.store.db.conn.execute("SELECT id, state FROM messages"))
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert changed["link"] == "main" and (changed["was"], changed["now"]) == ("smpp", "cimd2"), changed
    assert changed["waiting"] == 1 and changed["long_sms_sent_again"] == 1, changed
    cimd2 = parts_by(sim, "cimd2")
    # The whole SMS again, under a new reference: not its last two parts under the first part's.
    assert sorted(r["concat"]["seq"] for r in cimd2) == [1, 2, 3]  # type: ignore[index]
    assert {r["concat"]["ref"] for r in cimd2} != {old_ref}  # type: ignore[index]
    assert states[2] == "submitted"  # its report may yet come, if the old protocol is configured again


async def half_sent(tmp_path: Path, sim: Simulator, rest: str = "queued") -> str:
    """The SMPP link took a three-part SMS's first part (its other two `rest`, or one failed) and a
    short SMS, whose reports are still to come; the config's text."""
    text = config_text(tmp_path, smsc_port=sim.smpp_port)
    async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None
        assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
        await gw.until(lambda: gw.states() == ["submitted", "submitted"])
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
        conn.execute(
            "UPDATE parts SET state = CASE seq WHEN 2 THEN ? ELSE 'queued' END, link = NULL,"
            " smsc_id = NULL, submitted_at = NULL WHERE message_id = 1 AND seq > 1",
            (rest,),
        )
    return text


async def test_the_old_block_kept_under_a_new_name_keeps_what_its_bind_had_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The admin keeps the SMPP block as "main-smpp" and gives "main" to a CIMD2 block: the report of
    the SMS "main" sent over SMPP came by main-smpp and matched nothing (the SMS ended unreported), and
    the long SMS went again whole, though the SMSC bind that took its first part was still there."""
    async with simulator(tmp_path) as sim:
        text = await half_sent(tmp_path, sim)
        (old_ref,) = {r["concat"]["ref"] for r in parts_by(sim, "smpp") if r["concat"]}  # type: ignore[index]
        before = len(parts_by(sim, "smpp"))
        kept = text.replace('name = "main"\ntype = "smpp"', 'name = "main-smpp"\ntype = "smpp"', 1)
        cimd2 = f'[[smsc]]\nname = "main"\ntype = "cimd2"\nport = {sim.cimd2_port}\nsystem_id = "smsgw"\n'
        both = kept.replace("[simulator]", cimd2 + 'password = "secret"\n\n[simulator]', 1)
        config = tmp_path / "config.toml"
        config.write_text(both)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        (warned,) = [line for line in capsys.readouterr().err.splitlines() if "was SMPP and is CIMD2" in line]
        assert "its SMPP bind is link main-smpp's now" in warned, warned
        assert "the 2 SMS it sent over SMPP await their reports by main-smpp" in warned, warned
        assert "the 1 long SMS it sent part of go on by main-smpp" in warned, warned
        with capture_logs() as logs:
            async with running_gateway(parse_config(both, base_dir=tmp_path)) as gw:
                # The rest of the long SMS by the bind that took its first part, under its reference.
                await gw.until(lambda: len(parts_by(sim, "smpp")) == before + 2)
                await gw.until(lambda: gw.states() == ["submitted", "submitted"])
                sid = gw.store.db.conn.execute("SELECT smsc_id FROM parts WHERE message_id = 2").fetchone()[0]
                answer = await execute(sim.core, {"op": "report", "message_id": sid, "status": "delivered"})
                assert answer["ok"], answer
                await gw.until(lambda: gw.states()[1] == "delivered")
                links = {row[0] for row in gw.store.db.conn.execute("SELECT DISTINCT link FROM parts")}
        rest = parts_by(sim, "smpp")[before:]
        assert [(r["concat"]["ref"], r["concat"]["seq"]) for r in rest] == [(old_ref, 2), (old_ref, 3)]  # type: ignore[index]
        assert parts_by(sim, "cimd2") == []
        assert links == {"main-smpp"}
        (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
        assert changed["followed_by"] == "main-smpp" and changed["long_sms_sent_again"] == 0, changed
        assert (changed["waiting"], changed["long_sms_following"]) == (2, 1), changed
        assert not [e for e in logs if e["event"] in ("dlr.unmatched", "mt.long_sms_moved", "dlr.links_gone")]


async def test_a_long_sms_with_a_failed_part_is_not_counted_as_sent_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`longsms.send_whole_again` keeps a long SMS with a part failed as it is: check-config counted it
    as sent again whole, and its first part's report as not awaited."""
    async with simulator(tmp_path) as sim:
        text = await half_sent(tmp_path, sim, rest="failed")
        switched = text.replace('type = "smpp"', 'type = "cimd2"', 1).replace(
            f"port = {sim.smpp_port}", f"port = {sim.cimd2_port}", 1
        )
        config = tmp_path / "config.toml"
        config.write_text(switched)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        (warned,) = [line for line in capsys.readouterr().err.splitlines() if "was SMPP and is CIMD2" in line]
        assert "2 SMS it sent over SMPP await reports" in warned, warned
        assert "0 long SMS it sent part of over SMPP go again whole" in warned, warned
        with capture_logs() as logs:
            async with running_gateway(parse_config(switched, base_dir=tmp_path)) as gw:
                await gw.until(lambda: any(e["event"] == "config.link_protocol_changed" for e in logs))
        (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
        assert (changed["waiting"], changed["long_sms_sent_again"]) == (2, 0), changed
        assert parts_by(sim, "cimd2") == []


async def test_premium_answers_leave_by_the_bind_their_vote_came_by(tmp_path: Path) -> None:
    """A premium answer leaves by the link its vote came by (`parts.via`, from `mo.link`): after the SMPP
    block was kept as "main-smpp" and "main" given to a CIMD2 block, an answer queued before the change
    and one written after it to a vote the SMPP bind brought left by the CIMD2 bind, maybe another
    operator's, whose short code is not the premium number. A vote the CIMD2 block brings after the
    change is answered by it; a second start moves nothing again."""
    async with premium(tmp_path) as w:
        first = await w.vote("KP123 vote A")
        second = await w.vote("KP123 vote B", phone="+48601123457")
        assert (await smtp(w.gw.port, *reply_to(first, "Dziekujemy"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        await w.gw.until(lambda: w.gw.states() == ["delivered"])
        text = w.config.read_text()
    # As when the daemon stopped before the SMSC took the answer: queued, pinned to the vote's link.
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
        assert conn.execute("SELECT via FROM parts").fetchall() == [("main",)]
        conn.execute("UPDATE messages SET state = 'queued'")
        conn.execute("UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL")
    (cimd2_port,) = re.findall(r"cimd2_port = (\d+)", text)
    (relay,) = re.findall(r'relay = "127\.0\.0\.1:(\d+)"', text)
    kept = text.replace('name = "main"\ntype = "smpp"', 'name = "main-smpp"\ntype = "smpp"', 1)
    block = f'[[smsc]]\nname = "main"\ntype = "cimd2"\nport = {cimd2_port}\nsystem_id = "smsgw"\n'
    both = kept.replace("[simulator]", block + 'password = "secret"\n\n[simulator]', 1)
    cfg = parse_config(both, source="test", base_dir=tmp_path)
    with capture_logs() as logs:
        async with smtp_sink(int(relay)) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
            w = Premium(gw, sink, w.config, [0.0])
            await gw.until(lambda: len(w.sent()) == 1)  # the answer queued before the change
            assert (await smtp(gw.port, *reply_to(second, "Tak"))).error is None
            await gw.until(lambda: len(w.sent()) == 2)
            third = await w.vote("KP123 vote C", phone="+48601123458", protocol="cimd2")
            assert (await smtp(gw.port, *reply_to(third, "Nie"))).error is None
            await gw.until(lambda: len(w.sent()) == 3)
            # The SMSC has the third before the gateway writes its answer (the part's link) down.
            unwritten = "SELECT COUNT(*) FROM parts WHERE link IS NULL"
            await gw.until(lambda: gw.store.db.conn.execute(unwritten).fetchone()[0] == 0)
            sent = [(r["protocol"], r["destination"]) for r in w.sent()]
            links = gw.store.db.conn.execute("SELECT link, via FROM parts ORDER BY message_id").fetchall()
    assert sent == [("smpp", "+48601123456"), ("smpp", "+48601123457"), ("cimd2", "+48601123458")], sent
    assert links == [("main-smpp", "main-smpp"), ("main-smpp", "main-smpp"), ("main", "main")], links
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert changed["followed_by"] == "main-smpp" and changed["pinned_following"] == 1, changed
    with capture_logs() as logs:
        async with smtp_sink(int(relay)), running_gateway(cfg) as gw:  # type: ignore[arg-type]
            again = gw.store.db.conn.execute("SELECT link, via FROM parts ORDER BY message_id").fetchall()
            moved = "SELECT COUNT(*) FROM billing_state WHERE key LIKE 'link_moved/%'"
            (noted,) = gw.store.db.conn.execute(moved).fetchone()
    assert again == links and noted == 1
    assert not [e for e in logs if e["event"] == "config.link_protocol_changed"]


@pytest.mark.parametrize("kept", [False, True], ids=["no-block-keeps-the-bind", "the-old-block-kept"])
async def test_the_sms_awaiting_reports_are_counted_as_sms_not_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kept: bool
) -> None:
    """A long SMS whose three parts the SMPP link sent, all awaiting their reports, and a short one: both
    warnings said 4 SMS awaited their reports, counting the long SMS's parts."""
    async with simulator(tmp_path) as sim:
        text = config_text(tmp_path, smsc_port=sim.smpp_port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None
            assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
            await gw.until(lambda: len(parts_by(sim, "smpp")) == 4)
            await gw.until(lambda: gw.states() == ["submitted", "submitted"])
        if kept:
            renamed = text.replace('name = "main"\ntype = "smpp"', 'name = "main-smpp"\ntype = "smpp"', 1)
            cimd2 = f'[[smsc]]\nname = "main"\ntype = "cimd2"\nport = {sim.cimd2_port}\nsystem_id = "smsgw"\n'
            switched = renamed.replace("[simulator]", cimd2 + 'password = "secret"\n\n[simulator]', 1)
            said = "the 2 SMS it sent over SMPP await their reports by main-smpp"
        else:
            switched = text.replace('type = "smpp"', 'type = "cimd2"', 1).replace(
                f"port = {sim.smpp_port}", f"port = {sim.cimd2_port}", 1
            )
            said = "2 SMS it sent over SMPP await reports that only a session of SMPP brings"
        config = tmp_path / "config.toml"
        config.write_text(switched)
        capsys.readouterr()
        assert main(["-c", str(config), "check-config"]) == 0
        (warned,) = [line for line in capsys.readouterr().err.splitlines() if "was SMPP and is CIMD2" in line]
        assert said in warned, warned
        with capture_logs() as logs:
            async with running_gateway(parse_config(switched, base_dir=tmp_path)) as gw:
                await gw.until(lambda: any(e["event"] == "config.link_protocol_changed" for e in logs))
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert changed["waiting"] == 2 and said in changed["note"], changed
