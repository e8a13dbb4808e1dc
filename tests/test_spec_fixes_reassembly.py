"""The reassembly timeout is the operator's to set (R-3.4): `[replies] reassembly_timeout_seconds`.

An incomplete long SMS is mailed with a gap marker once no part of it came for the timeout: 5
minutes unless the config says otherwise. Through the daemon, its built-in simulator and its own
housekeeping, on an injected clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway import reassembly
from gateway.config import ConfigError, parse_config
from gateway.configfeatures import RepliesSection
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_premium_loop import premium_config

PHONE = "+48601123456"


def test_the_timeout_defaults_to_five_minutes_within_bounds(tmp_path: Path) -> None:
    assert RepliesSection().reassembly_timeout_seconds == reassembly.TIMEOUT_SECONDS == 300
    path, _ = premium_config(tmp_path, "smpp", free_port())
    for bad in (5, 86401):
        with pytest.raises(ConfigError, match="reassembly_timeout_seconds"):
            parse_config(path.read_text() + f"\n[replies]\nreassembly_timeout_seconds = {bad}\n", source="t")


async def test_a_shorter_timeout_mails_an_incomplete_set_sooner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [1_800_000_000.0]
    relay = free_port()
    path, _ = premium_config(tmp_path, "smpp", relay)
    text = path.read_text() + "\n[replies]\nreassembly_timeout_seconds = 30\n"
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    async with smtp_sink(relay), running_gateway(cfg, lambda: now[0]) as gw:
        db = gw.store.db.conn
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick("smpp") is not None)
        session = core._pick("smpp")
        assert session is not None
        parts = mo_parts("KP999 " + "glosuje na A, " * 25, ref=42, parts=3)
        for esm, dc, sm in parts[:2]:
            fields = dict(address_fields(PHONE, "7355"), esm_class=esm, data_coding=dc, short_message=sm)
            await session.send_part(tuple(fields.items()))

        def segments() -> int:
            return int(db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0])

        await gw.until(lambda: segments() == 2)
        now[0] += 20  # within the timeout: the third part may still come
        await asyncio.sleep(0.5)  # ten looks of the housekeeping
        assert segments() == 2
        now[0] += 11  # 31 s after the last part: well before the default 5 minutes
        await gw.until(lambda: segments() == 0)
        (whole,) = db.execute("SELECT text, seqs FROM mo WHERE state != 'joined'").fetchall()
        # part 3 stands as the gap
        assert whole[0].endswith(f" {reassembly.gap(3, 3, 3)}") and whole[1] == "1,2"
