"""An SMPP part's validity goes relative (SMPP 3.4 7.1.1 `YYMMDDhhmmss000R`): what is left of it at the
submit, which the SMSC counts from when it takes the submit_sm, whatever its clock or zone.

Sent absolute (`YYMMDDhhmmss000+`, Kannel's way), the end was read on the SMSC's clock: an SMSC whose
clock (or zone setting) ran three hours ahead of ours expired an SMS with an hour of validity before
it tried it, and the sender was bounced "validity period expired"; one behind kept SMS for hours past
their end. `validity_format = "absolute"` still sends the end in UTC, for an SMSC that takes no
relative time. The link against the simulator over TCP, on a clock of its own; the simulator reads
both forms and expires a part whose validity ends before its delivery.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.config import SimulatorSection, SmscSection
from smsc.base import LinkState, Outcome, ReportStatus
from smsc.simulator.core import SimulatorCore, SubmittedSms
from smsc.simulator.smpp_server import SmppServer, SmppSession
from smsc.smpp.link import SmppLink
from smsc.smpp.pdu import read_smpp_time, smpp_relative
from tests.fakes.smsc import EventRecorder, FakeSMSC
from tests.test_simulator import part
from tests.test_smpp_link import running_link

HOUR = 3600.0


@asynccontextmanager
async def smsc_ahead(
    tmp_path: Path, ahead: float, *, delay: float = 0.05, **link: Any
) -> AsyncIterator[tuple[SmppLink, EventRecorder, SmppServer]]:
    """The simulator on a clock `ahead` seconds past ours, its receipts `delay` after a submit, and a
    link bound to it."""

    def now() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=ahead)

    core = SimulatorCore(SimulatorSection(dlr_delay_seconds=delay), tmp_path / "sim.jsonl", now=now)
    server = SmppServer(core)
    await server.start()
    cfg = SmscSection(name="sim", type="smpp", port=server.port, system_id="smsgw",
                      reconnect_min_seconds=0.05, reconnect_max_seconds=0.2, **link)  # fmt: skip
    smpp, ev = SmppLink(cfg.driver_settings(), password="secret"), EventRecorder()
    await smpp.start(ev)
    try:
        await ev.wait_until(lambda: smpp.state is LinkState.ACTIVE)
        yield smpp, ev, server
    finally:
        await smpp.stop()
        await server.stop()
        await core.close()


async def report_for(link: SmppLink, ev: EventRecorder, valid_for: float, clock: Callable[[], float]) -> Any:
    result = await link.submit(replace(part(), validity=datetime.fromtimestamp(clock() + valid_for, UTC)))
    await ev.wait_for(lambda: len(ev.reports) == 1)
    assert ev.reports[0].message_id == result.message_id
    return ev.reports[0]


async def test_an_smsc_whose_clock_is_ahead_delivers_an_sms_with_an_hour_left(tmp_path: Path) -> None:
    async with smsc_ahead(tmp_path, 3 * HOUR) as (link, ev, server):
        report = await report_for(link, ev, HOUR, time.time)
        told = server.received[0].validity
    assert told.endswith("000R") and told[:12] in ("000000010000", "000000005959"), told
    assert report.status is ReportStatus.DELIVERED, report.error


async def test_the_time_left_counts_on_the_daemons_clock(tmp_path: Path) -> None:
    # The daemon's clock three days behind the host's (and the SMSC's): the SMSC is told the part's
    # day, not an end three days past by its clock.
    def clock() -> float:
        return time.time() - 3 * 86400

    async with smsc_ahead(tmp_path, 0) as (link, ev, server):
        link.clock = clock
        report = await report_for(link, ev, 24 * HOUR, clock)
        told = server.received[0].validity
    assert report.status is ReportStatus.DELIVERED, report.error
    arrived = datetime.now(UTC)
    end = read_smpp_time(told, arrived)
    assert end is not None and (end - arrived).total_seconds() == pytest.approx(24 * HOUR, abs=5)


async def test_absolute_on_request_and_the_simulator_expires_by_it(tmp_path: Path) -> None:
    # The SMSC's clock three hours ahead reads the UTC end as three hours past: expired, not tried.
    async with smsc_ahead(tmp_path, 3 * HOUR, validity_format="absolute") as (link, ev, server):
        report = await report_for(link, ev, HOUR, time.time)
        told = server.received[0].validity
    assert told.endswith("000+")
    assert report.status is ReportStatus.FAILED
    assert report.error is not None and "EXPIRED" in report.error


async def test_the_simulator_expires_a_relative_validity_shorter_than_its_delivery(tmp_path: Path) -> None:
    async with smsc_ahead(tmp_path, 0, delay=1.5) as (link, ev, server):
        report = await report_for(link, ev, 1.0, time.time)
        assert server.received[0].validity == "000000000001000R"
    assert report.status is ReportStatus.FAILED
    assert report.error is not None and "EXPIRED" in report.error


def test_the_simulator_reads_each_validity_form() -> None:
    at = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)

    def sms(protocol: str, validity: str) -> SubmittedSms:
        return SubmittedSms(protocol, "smsgw", "+48100200300", "+48601123456", 0, b"", "x", validity=validity)

    hour = timedelta(hours=1)
    assert sms("smpp", smpp_relative(HOUR)).expires_at(at) == at + hour
    assert sms("smpp", "000102030405000R").expires_at(at) == at + timedelta(days=30 + 2, hours=3, seconds=245)
    assert sms("smpp", "261207070000000+").expires_at(at) == at + hour  # UTC
    assert sms("smpp", "261207090000008+").expires_at(at) == at + hour  # UTC+2
    assert sms("smpp", "261207040000508-").expires_at(at) == at + timedelta(milliseconds=500)  # UTC-2
    assert sms("cimd2", "11").expires_at(at) == at + hour  # 050: (11 + 1) x 5 min
    assert sms("cimd2", "261207070000").expires_at(at) == at + hour  # 051, the SMSC's time (UTC here)
    for protocol, validity in (("smpp", ""), ("smpp", "26120707000000+"), ("smpp", "261207070000099+"),
                               ("cimd2", "-1"), ("cimd2", "256"), ("cimd2", "")):  # fmt: skip
        assert sms(protocol, validity).expires_at(at) is None, validity


class RelativeRefusingSMSC(FakeSMSC):
    """An SMSC that takes only the absolute form, as some do: ESME_RINVEXPIRY for a relative one."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        if sms.validity.endswith("R"):
            session.answer_submit(seq, None, status=0x62)
        else:
            await super().on_submit(session, seq, sms)


async def test_an_smsc_refusing_the_relative_form_turns_the_link_absolute_and_names_the_key() -> None:
    # The part goes again, absolute (`tests.test_smpp_validity_absolute_only`); the log names the
    # setting that keeps it so after a restart, not only the status.
    until = datetime.now(UTC) + timedelta(hours=1)
    with capture_logs() as logs:
        async with RelativeRefusingSMSC() as smsc, running_link(smsc.port) as (link, _ev):
            refused = await link.submit(replace(part(), validity=until))
            again = await link.submit(replace(part(), validity=until))
    assert refused.outcome is Outcome.TEMPORARY and refused.retry_after > 0
    assert refused.error is not None and refused.error.startswith("ESME_RINVEXPIRY (0x62)")
    assert again.outcome is Outcome.ACCEPTED
    said = [e for e in logs if e["event"] == "smpp.validity_refused"]
    assert len(said) == 1 and said[0]["log_level"] == "warning", said
    assert said[0]["hint"] == (
        "the SMSC refused a relative validity (ESME_RINVEXPIRY): this link sends absolute ones until the"
        ' daemon restarts; set validity_format = "absolute" in [[smsc]] "op" to keep it so'
    )
    async with (
        RelativeRefusingSMSC() as smsc,
        running_link(smsc.port, validity_format="absolute") as (link, _),
    ):
        assert (await link.submit(replace(part(), validity=until))).outcome is Outcome.ACCEPTED
