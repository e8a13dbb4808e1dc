"""An SMSC account that refuses status report requests (900:310 to every submit asking for one): the
failure names the setting to change, and with `status_reports = false` the link asks for none (no 056)
and its SMS are taken. The daemon over CIMD2 to a scripted SMSC, real SQLite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.cimd2 import ScriptedSmsc
from tests.test_cimd2_general_error import daemon_to_first_submit
from tests.test_late_answer import next_submit

REFUSED = (P.ERROR_CODE, 310), (P.ERROR_TEXT, "incorrect status report request")


async def test_a_310_refusal_names_the_setting_to_change(tmp_path: Path) -> None:
    async with daemon_to_first_submit(tmp_path, f"601123456@{DOMAIN}", "Reports refused") as first:
        gw, _peer, conn, submit, _sink, _logs = first
        assert submit.get(P.STATUS_REPORT_REQUEST) == "14"
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, *REFUSED))
        await gw.until(lambda: gw.states() == ["failed"])
        [(reason,)] = gw.store.db.conn.execute("SELECT error FROM parts")
    assert reason == (
        "CIMD2 900:310 incorrect status report request: the SMSC account refuses status report"
        ' requests: set status_reports = false in [[smsc]] "main"'
    )


async def test_with_status_reports_off_no_056_goes_and_the_sms_is_taken(tmp_path: Path) -> None:
    async with ScriptedSmsc() as peer:
        text = config_text(tmp_path, smsc_port=peer.port).replace('type = "smpp"', 'type = "cimd2"')
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        cfg = cfg.model_copy(update={"smsc": [cfg.smsc[0].model_copy(update={"status_reports": False})]})
        async with running_gateway(cfg) as gw:
            conn = await peer.accept()
            await conn.login()
            await gw.send(mail(f"601123456@{DOMAIN}", "No report wanted"))
            submit = await next_submit(conn)
            stamp = time.strftime("%y%m%d%H%M%S", time.gmtime())
            if submit.get(P.STATUS_REPORT_REQUEST) is None:
                answer = Packet.make(
                    Op.SUBMIT_RESP, submit.number, (P.DESTINATION, "+48601123456"), (P.SCTS, stamp)
                )
            else:  # as the account does: any 056 refused
                answer = Packet.make(Op.SUBMIT_RESP, submit.number, *REFUSED)
            conn.send(answer)
            db = gw.store.db.conn
            await gw.until(
                lambda: db.execute("SELECT state FROM parts").fetchone()[0] in ("submitted", "failed")
            )
            [(state, smsc_id)] = db.execute("SELECT state, smsc_id FROM parts")
    assert submit.get(P.STATUS_REPORT_REQUEST) is None
    assert (state, smsc_id) == ("submitted", f"{stamp}:48601123456")


def test_check_config_refuses_the_key_on_an_smpp_link(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=2775).replace(
        'type = "smpp"', 'type = "smpp"\nstatus_reports = false'
    )
    with pytest.raises(ConfigError, match="status_reports"):
        parse_config(text, source="test config", base_dir=tmp_path)
