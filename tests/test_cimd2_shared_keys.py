"""A CIMD2 report key (060 stamp and phone) the SMSC gave two SMS names neither, whichever link gave it
and whenever: two binds of one SMSC account, each sending an SMS to one phone in one second, or an SMSC
stamping to the minute (or stuck) answering an SMS after a restart with the key of one from before.
One link's own memory of its keys (`smsc.cimd2.stampkeys`) saw neither case: the reports went to the
SMS oldest first whatever the SMSC reported for which, the delivered SMS's sender got a bounce, and the
failed one showed delivered. Both now wait under the key's shared form, their reports kept unmatched,
to end `unreported`; the store says so once per link. And one phone's SMS go a second apart over both
binds, so that an honest SMSC gives them two keys and each takes its own report, and follow one
another's bind while one is in hand, so that they reach the SMSC in order.

Against the real daemon (SMTP in, a real aiosmtpd sink for bounces), scripted CIMD2 SMSC over TCP, real
SQLite; the restart is a real daemon stop and start on the same state directory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import structlog

from gateway.config import Config, parse_config
from smsc.cimd2.packet import P
from tests.conftest import DOMAIN, Running, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_report_keys import Operator, Submit, bounce_text
from tests.test_late_answer import warnings

STUCK = "261207032100"  # the SMSC's 060 for every submit: a clock stuck, or to the minute
PHONE = "601557031"
KEY = f"{STUCK}:48{PHONE}"
SHARED = f"{STUCK}-shared:48{PHONE}"
# A second bind of the link "main" (same host, port and login); neither comes back at once when dropped.
SECOND_BIND = """
[[smsc]]
name = "b"
type = "cimd2"
port = {port}
system_id = "smsgw"
password = "secret"
response_timeout_seconds = 5
reconnect_min_seconds = 3
reconnect_max_seconds = 5
"""


def cimd2_text(tmp_path: Path, smsc_port: int, sink_port: int, binds: int) -> str:
    text = config_text(tmp_path, smsc_port=smsc_port, relay_port=sink_port)
    text = text.replace('type = "smpp"', 'type = "cimd2"').replace("window = 10\n", "")
    if binds == 2:
        text = text.replace("[simulator]", SECOND_BIND.format(port=smsc_port) + "\n[simulator]")
    return text


def cimd2_config(tmp_path: Path, smsc_port: int, sink_port: int, binds: int) -> Config:
    text = cimd2_text(tmp_path, smsc_port, sink_port, binds)
    text = text.replace("reconnect_min_seconds = 0.1", "reconnect_min_seconds = 3")
    return parse_config(text, source="test", base_dir=tmp_path)


def stuck(operator: Operator) -> Operator:
    """The operator answering every submit with STUCK, and reporting it so."""
    original = operator.answer

    def answer(submit: Submit) -> None:
        submit.stamp = STUCK
        original(submit)

    operator.answer = answer  # type: ignore[method-assign]
    return operator


async def bound(peer: ScriptedSmsc, make: Callable[[Operator], Operator] = lambda op: op) -> Operator:
    """The operator of the daemon's next bind, logged in."""
    conn = await peer.accept()
    await conn.login()
    return make(Operator(conn))


async def both_bound(
    peer: ScriptedSmsc, make: Callable[[Operator], Operator] = lambda op: op
) -> list[Operator]:
    return [await bound(peer, make) for _ in range(2)]


def first_and_other(operators: list[Operator]) -> tuple[Operator, Operator]:
    """The bind the first SMS went by, and the other one."""
    first_bind = next(op for op in operators if op.submits)
    return first_bind, next(op for op in operators if op is not first_bind)


@contextlib.asynccontextmanager
async def serving(operators: list[Operator]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(op.serve()) for op in operators]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def parts(gw: Running) -> list[tuple[str, str | None]]:
    return [tuple(r) for r in gw.store.db.conn.execute("SELECT state, smsc_id FROM parts ORDER BY id")]


def unmatched(gw: Running) -> int:
    return int(gw.store.db.conn.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0])


async def reported_wrongly_or_kept(gw: Running, sink: Sink) -> None:
    """Wait for both reports to be stored, and for a bounce that would follow a wrong match."""
    await gw.until(lambda: int(gw.store.db.conn.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0]) == 2)
    await asyncio.sleep(0.5)  # a bounce, were one made, would be on its way
    assert gw.states() == ["submitted", "submitted"], gw.states()  # to end `unreported`, never bounced
    assert sink.messages == []
    assert unmatched(gw) == 2


async def test_one_060_given_by_two_binds_of_one_account_settles_neither_sms(tmp_path: Path) -> None:
    sink_port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
            async with running_gateway(cimd2_config(tmp_path, peer.port, sink_port, binds=2)) as gw:
                operators = await both_bound(peer, stuck)
                async with serving(operators):
                    await gw.send(mail(f"{PHONE}@{DOMAIN}", "First: DELIVERED"))
                    await gw.until(lambda: any(op.submits for op in operators))
                    first_bind, other = first_and_other(operators)
                    await gw.until(lambda: gw.states() == ["submitted"])
                    assert parts(gw) == [("submitted", KEY)]
                    first_bind.conn.close()  # the SMSC drops that bind: the next SMS goes by the other
                    await gw.send(mail(f"{PHONE}@{DOMAIN}", "Second: FAILED"))
                    (second,) = await other.until_submits(1)
                    await gw.until(lambda: gw.states() == ["submitted", "submitted"])
                    assert parts(gw) == [("submitted", SHARED)] * 2
                    # The SMSC reports both on the bind still up: the second failed, then the first delivered.
                    await other.report(second, PHONE, 3, 1)
                    await other.report(first_bind.submits[0], PHONE, 4)
                    await reported_wrongly_or_kept(gw, sink)
    (said,) = warnings(logs, "dlr.key_shared")
    assert PHONE not in str(said) and "never applied to the wrong SMS" in said["effect"]


async def test_one_060_given_before_and_after_a_restart_settles_neither_sms(tmp_path: Path) -> None:
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        cfg = cimd2_config(tmp_path, peer.port, sink_port, binds=1)
        async with running_gateway(cfg) as gw:
            before = await bound(peer, stuck)
            async with serving([before]):
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "Before: DELIVERED"))
                (first,) = await before.until_submits(1)
                await gw.until(lambda: gw.states() == ["submitted"])
        # The daemon stopped (an upgrade, a restart) and started again on the same state directory.
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                after = await bound(peer, stuck)
                async with serving([after]):
                    await gw.send(mail(f"{PHONE}@{DOMAIN}", "After: FAILED"))
                    (second,) = await after.until_submits(1)
                    await gw.until(lambda: gw.states() == ["submitted", "submitted"])
                    assert parts(gw) == [("submitted", SHARED)] * 2
                    await after.report(second, PHONE, 3, 1)
                    await after.report(first, PHONE, 4)
                    await reported_wrongly_or_kept(gw, sink)
    (said,) = warnings(logs, "dlr.key_shared")
    assert said["link"] == "main"


async def test_one_phones_sms_go_a_second_apart_over_both_binds_and_keep_their_own_reports(
    tmp_path: Path,
) -> None:
    # The SMSC stamps with its clock's seconds, as a real one does. The bind the first SMS went by is
    # dropped right after its answer, and the next SMS to the phone goes by the other bind: it went in
    # the same second, under the same key, and neither SMS could take its report.
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        async with running_gateway(cimd2_config(tmp_path, peer.port, sink_port, binds=2)) as gw:
            operators = await both_bound(peer)
            async with serving(operators):
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "First: DELIVERED"))
                await gw.until(lambda: any(op.submits for op in operators))
                first_bind, other = first_and_other(operators)
                first_bind.conn.close()
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "Second: FAILED"))
                (second,) = await other.until_submits(1)
                (first,) = first_bind.submits
                assert second.arrived - first.answered >= 0.99 and second.stamp != first.stamp
                await gw.until(lambda: gw.states() == ["submitted", "submitted"])
                await other.report(second, PHONE, 3, 1)
                await other.report(first, PHONE, 4)
                await gw.until(lambda: gw.states() == ["delivered", "failed"], timeout=10)
                await sink.wait(1)
                assert len(sink.messages) == 1 and "Second: FAILED" in bounce_text(sink)


async def test_a_060_one_link_gave_twice_names_neither_sms_after_a_restart(tmp_path: Path) -> None:
    # The link saw the key repeated and kept its reports unmatched, but only while it ran: the first SMS
    # kept the key in the store, and after a restart took the next report under it, the second's.
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port) as sink:
        cfg = cimd2_config(tmp_path, peer.port, sink_port, binds=1)
        async with running_gateway(cfg) as gw:
            before = await bound(peer, stuck)
            async with serving([before]):
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "First: DELIVERED"))
                await gw.send(mail(f"{PHONE}@{DOMAIN}", "Second: FAILED"))
                first, second = await before.until_submits(2)
                await gw.until(lambda: gw.states() == ["submitted", "submitted"])
                assert parts(gw) == [("submitted", SHARED)] * 2
        async with running_gateway(cfg) as gw:
            after = await bound(peer)
            async with serving([after]):
                await after.report(second, PHONE, 3, 1)
                await after.report(first, PHONE, 4)
                await reported_wrongly_or_kept(gw, sink)


async def test_one_phones_sms_reach_the_smsc_in_order_when_its_bind_is_full(tmp_path: Path) -> None:
    # "main" goes at 1 SMS a second, its places (1 + 8 waiting for the rate) all the phone's: the SMS
    # after them went straight out by the other bind, before the ones waiting on "main", and the phone
    # had them out of order.
    sink_port = free_port()
    async with ScriptedSmsc() as peer, smtp_sink(sink_port):
        text = cimd2_text(tmp_path, peer.port, sink_port, binds=2)
        text = text.replace("max_per_second = 1000", "max_per_second = 1")
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
            operators = await both_bound(peer)
            async with serving(operators):
                for n in range(11):
                    await gw.send(mail(f"{PHONE}@{DOMAIN}", f"Alert {n:02d}"))
                await gw.until(lambda: sum(len(op.submits) for op in operators) == 11, timeout=40)
                arrived = sorted(
                    (s.arrived, s.packet.get(P.USER_DATA)) for op in operators for s in op.submits
                )
                assert [text for _at, text in arrived] == [f"Alert {n:02d}" for n in range(11)]
                stamps = [s.stamp for op in operators for s in op.submits]
                assert len(set(stamps)) == 11  # and each under a key of its own
