"""A link renamed in the configuration while SMS it sent wait for their delivery reports: the reports
come by the new name after the restart. They were matched on (link, message id), so each stayed
unmatched (`dlr.unmatched`, at info) and its SMS `submitted`: a failure never bounced, and the
message ended `unreported` a day after its validity. The daemon against a fake SMSC over TCP (the
same SMSC across both runs) and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import parse_config
from smsc.base import ReportStatus
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HeldSMSC


async def test_reports_of_a_renamed_link_reach_the_sms_it_sent(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Before the rename"))).error is None
            await smsc.wait_for(1)
            smsc.answer(1)
            await gw.until(lambda: gw.states() == ["submitted"])
            (smsc_id,) = gw.store.db.conn.execute("SELECT smsc_id FROM parts").fetchone()
        renamed = text.replace('name = "main"', 'name = "orange"', 1)
        with capture_logs() as logs:
            async with running_gateway(parse_config(renamed, base_dir=tmp_path)) as gw:
                assert await smsc.inject_report(smsc_id, ReportStatus.FAILED)
                await gw.until(lambda: gw.states() == ["failed"])
        (gone,) = [e for e in logs if e["event"] == "dlr.links_gone"]
        assert gone["waiting"] == {"main": 1}
        assert "a link removed for good leaves them 'submitted' until they expire" in gone["note"]
        assert not [e for e in logs if e["event"] == "dlr.unmatched"]
