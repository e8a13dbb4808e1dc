"""A corrected `[[smsc]] password_file` is used at the next bind, without a restart, and a refused
login names `password_file` when the password came from it.

The file was read once, when the driver was built: an admin who fixed a wrong password in it saw the
link refused until a restart, while the README says the TLS files are read again at each connect; and
the refusal said "check ... system_id and password" though the key set was password_file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from gateway.config import SmscSection
from gateway.linkstatus import LinkView
from smsc.base import LinkState
from smsc.cimd2.packet import Op, P, Packet
from tests.conftest import make_config, running_gateway
from tests.fakes.cimd2 import RecordingEvents, ScriptedSmsc
from tests.fakes.smsc import HappySMSC
from tests.test_cimd2_link import FAST

WRONG, RIGHT = "wrongpw", "secret"  # HappySMSC's password is "secret"


async def test_a_corrected_smpp_password_file_is_used_at_the_next_bind(tmp_path: Path) -> None:
    secret_file = tmp_path / "smsc-password"
    secret_file.write_text(WRONG + "\n")
    secret_file.chmod(0o600)
    async with HappySMSC(password=RIGHT) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        cfg.smsc[0] = cfg.smsc[0].model_copy(update={"password": None, "password_file": secret_file})
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                links = LinkView(gw.daemon.dispatcher)
                await gw.until(lambda: "refused the login" in links()["main"]["last_error"])
                error = links()["main"]["last_error"]
                secret_file.write_text(RIGHT + "\n")  # the admin corrects the file; no restart
                await gw.until(lambda: links()["main"]["state"] == LinkState.ACTIVE.value)
    words = 'the SMSC refused the login: check [[smsc]] "main" system_id and password_file'
    assert error == f"bind refused: ESME_RINVPASWD (0x0E): {words}", error
    assert any(e["event"] == "smpp.bound" for e in logs)
    assert WRONG not in repr(logs) and RIGHT not in repr(logs)  # never the password


async def test_an_unreadable_password_file_at_a_bind_is_said_and_the_link_waits_for_it(
    tmp_path: Path,
) -> None:
    secret_file = tmp_path / "smsc-password"
    secret_file.write_text(RIGHT + "\n")
    async with HappySMSC(password=RIGHT) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        cfg.smsc[0] = cfg.smsc[0].model_copy(update={"password": None, "password_file": secret_file})
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                links = LinkView(gw.daemon.dispatcher)
                await gw.until(lambda: links()["main"]["state"] == LinkState.ACTIVE.value)
                secret_file.unlink()  # moved away while the link is up: the next bind says so
                smsc.drop_all()
                await gw.until(lambda: "cannot read" in links()["main"]["last_error"])
                error = links()["main"]["last_error"]
                secret_file.write_text(RIGHT + "\n")
                await gw.until(lambda: links()["main"]["state"] == LinkState.ACTIVE.value)
    assert error == f'[[smsc]] "main" password_file: cannot read {secret_file}: No such file or directory'
    (said,) = [e for e in logs if e["event"] == "smpp.password_unreadable"][:1]
    assert said["log_level"] == "error" and said["error"] == error
    assert RIGHT not in repr(logs)


async def test_a_corrected_cimd2_password_file_is_used_at_the_next_login(tmp_path: Path) -> None:
    secret_file = tmp_path / "smsc-password"
    secret_file.write_text(WRONG + "\n")
    values = {"name": "c2", "type": "cimd2", "system_id": "smsgw", "password_file": str(secret_file), **FAST}
    async with ScriptedSmsc() as peer:
        link = SmscSection.model_validate(values | {"port": peer.port}).driver(tmp_path)
        events = RecordingEvents()
        with capture_logs() as logs:
            await link.start(events)
            try:
                conn = await peer.accept()
                login = await conn.next()
                assert login.get(P.PASSWORD) == WRONG
                conn.send(Packet.make(Op.LOGIN_RESP, login.number, (P.ERROR_CODE, 100)))
                await events.wait_for(lambda: any(e["event"] == "cimd2.login_refused" for e in logs))
                error = link.stats().last_error
                secret_file.write_text(RIGHT + "\n")  # corrected; the link logs in again by itself
                conn = await peer.accept()
                login = await conn.next()
            finally:
                await link.stop(drain=False)
    assert login.get(P.PASSWORD) == RIGHT
    words = 'the SMSC refused the login: check [[smsc]] "c2" system_id and password_file'
    assert error == f"login refused: 100 invalid login: {words}", error
    assert WRONG not in repr(logs) and RIGHT not in repr(logs)


async def test_a_password_file_too_long_for_smpp_is_warned_of_once(tmp_path: Path) -> None:
    # Read once at the build, the driver warned of its length; read at each bind, it still does,
    # once, not at every reconnect.
    secret_file = tmp_path / "smsc-password"
    secret_file.write_text("longer-than-8\n")
    async with HappySMSC(password=RIGHT) as smsc:
        values = {"name": "main", "type": "smpp", "port": smsc.port, "system_id": "smsgw"}
        values |= {"password_file": str(secret_file), **FAST}
        link = SmscSection.model_validate(values).driver(tmp_path)
        with capture_logs() as logs:
            await link.start(RecordingEvents())
            try:
                for _ in range(600):  # a hang guard, not a timing assertion
                    if link.stats().reconnects >= 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await link.stop(drain=False)
    assert link.stats().reconnects >= 2
    (said,) = [e for e in logs if e["event"] == "smpp.password_too_long"]
    assert said["length"] == 13 and "longer-than-8" not in repr(logs)
