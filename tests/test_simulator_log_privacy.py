"""The built-in simulator in the daemon's own log (R-6.5): it wrote every SMS it received with the phone's
number (`sim.received`), every MO it sent with its sender (`sim.mo_sent`) and every report
(`sim.report_sent`) at INFO, under `smsgw run` with the shipped config. The daemon's log holds no phone
number and two lines a mail; the simulator's part log keeps what it received. Real SMTP in, the
simulator's SMSC over TCP, its control port for the phone's answer."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from gateway.logging import _redact
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import PHONE, two_way_config

SHOWN = ("info", "warning", "error", "critical")  # what the daemon writes at its default level


async def test_the_simulators_sms_mo_and_report_lines_stay_out_of_the_daemons_log(
    tmp_path: Path,
) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        with capture_logs() as logs:
            sent = await gw.send(mail(f"601123456@{DOMAIN}", body="Nowa oferta", subject="Oferta"))
            assert sent.error is None
            await gw.until(lambda: len(core.records) == 1)
            # The report's own line, asserted below: the first `message.state` is the submit's, which
            # may come before the simulator sends the report (its delay, a slow machine).
            await gw.until(lambda: any(e["event"] == "sim.report_sent" for e in logs))
            answered = await send_command(
                "127.0.0.1",
                gw.daemon.simulator.control_port,
                {"op": "mo", "reply_to_last": True, "text": "Tak"},
            )
            assert answered["ok"] and answered["source"] == PHONE
            await sink.wait(1)
    simulator = [e for e in logs if e["event"].startswith("sim.")]
    # Still there for a debugging admin (`--log-level DEBUG`), with the numbers.
    assert {"sim.received", "sim.report_sent", "sim.mo_sent"} <= {e["event"] for e in simulator}, simulator
    shown = [_redact(None, "", dict(e)) for e in simulator if e["log_level"] in SHOWN]
    assert {e["event"] for e in shown} <= {"sim.session_up", "sim.session_down"}, shown  # a login, no SMS
    assert not [e for e in shown if PHONE.lstrip("+") in str(e)], shown
    # The part log, not the daemon's, is where the simulator keeps the number it sent to.
    assert PHONE.lstrip("+") in (tmp_path / "sim.jsonl").read_text()
