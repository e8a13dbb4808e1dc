"""CIMD2 over TLS: the link logged in to the simulator's CIMD2 port with TLS on, and refused as an admin
can act on it (a wrong CA, a client certificate the SMSC asks for)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from smsc.base import LinkState, Outcome, ReportStatus
from smsc.cimd2.link import Cimd2Link
from tests.certs import make_cert_pair
from tests.fakes.smsc import EventRecorder
from tests.test_cimd2_link import section, sms
from tests.test_smpp_tls import smsc_cert, tls_simulator, until


@asynccontextmanager
async def started(port: int, **cfg: Any) -> AsyncIterator[tuple[Cimd2Link, EventRecorder]]:
    link, ev = Cimd2Link(section(port, tls=True, **cfg), password="secret"), EventRecorder()
    await link.start(ev)
    try:
        yield link, ev
    finally:
        await link.stop()


async def test_a_cimd2_link_over_tls_submits_and_takes_the_receipt(tmp_path: Path) -> None:
    async with tls_simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        async with started(sim.cimd2_port, tls_ca_file=smsc_cert(tmp_path)) as (link, ev):
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            result = await link.submit(sms(text="CIMD2 over TLS"))
            await ev.wait_until(lambda: len(ev.reports) == 1)
    assert result.outcome is Outcome.ACCEPTED, result
    [report] = ev.reports
    assert report.message_id == result.message_id and report.status is ReportStatus.DELIVERED


async def test_a_wrong_ca_is_said_in_words_and_logged_once(tmp_path: Path) -> None:
    wrong, _ = make_cert_pair(tmp_path / "other")
    async with tls_simulator(tmp_path) as sim:
        assert sim.cimd2_port is not None
        with capture_logs() as logs:
            async with started(sim.cimd2_port, tls_ca_file=wrong) as (link, _):
                await until(lambda: link.stats().down_attempts >= 3)
                error = link.stats().last_error
                assert link.state is not LinkState.ACTIVE
    assert error == (
        f"TLS 127.0.0.1:{sim.cimd2_port}: certificate verify failed: unknown CA (self-signed certificate);"
        " set tls_ca_file to the CA the operator gave, or to the SMSC's own certificate if it is self-signed"
    )
    said = [e for e in logs if e["event"] == "cimd2.tls_failed"]
    assert [e["error"] for e in said] == [error], said
    assert not [e for e in logs if e["event"] == "cimd2.connect_failed"]  # said once, as a TLS fault


async def test_a_client_certificate_the_smsc_requires(tmp_path: Path) -> None:
    client_cert, client_key = make_cert_pair(tmp_path / "client")
    async with tls_simulator(tmp_path, tls_client_ca_file=client_cert) as sim:
        assert sim.cimd2_port is not None
        ca = smsc_cert(tmp_path)
        async with started(sim.cimd2_port, tls_ca_file=ca) as (link, _):
            await until(lambda: link.stats().down_attempts >= 2)
            error = link.stats().last_error
        given = {"tls_cert_file": client_cert, "tls_key_file": client_key}
        async with started(sim.cimd2_port, tls_ca_file=ca, **given) as (link, ev):
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            assert (await link.submit(sms(text="by certificate"))).outcome is Outcome.ACCEPTED
    assert error.startswith("login: ") and error.endswith(
        "before the login was answered, over TLS: does the SMSC require a client certificate"
        " (tls_cert_file, tls_key_file)?"
    ), error
