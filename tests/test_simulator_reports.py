"""R-6.5: the simulator "can inject MO messages and delivery reports". Its own reports follow the
number's suffix; `smsgw simulator send-report` gives one of the operator's choosing (a report that
comes late, a failure after all), as a user types it, against a running gateway (SMPP and CIMD2)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import parse_config
from tests.conftest import config_text, free_port, mail, running_gateway
from tests.test_process import ROOT


def smsgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args, "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_report_of_the_operators_choosing_settles_the_sms(tmp_path: Path, protocol: str) -> None:
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=cimd2 if protocol == "cimd2" else smpp)
    text = text.replace('type = "smpp"', f'type = "{protocol}"').replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        # The simulator's own report would come in an hour: the injected one settles the SMS.
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 3600',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
        assert (await gw.send(mail("601123456@sms.example.com", body="Report me"))).error is None
        await gw.until(lambda: gw.states() == ["submitted"])
        unknown = await asyncio.to_thread(smsgw, path, "simulator", "send-report", "no-such-id")
        assert unknown.returncode == 1 and "unknown message_id" in unknown.stderr, unknown.stderr
        both = await asyncio.to_thread(smsgw, path, "simulator", "send-report", "x", "--last")
        assert both.returncode == 2 and "or --last" in both.stderr, both.stderr
        sent = await asyncio.to_thread(
            smsgw, path, "simulator", "send-report", "--last", "--status", "failed"
        )
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("report failed for message ")
        await gw.until(lambda: gw.states() == ["failed"])
