"""A corrected `[[smsc]] password_file` is used at the next bind, without a restart, and a refused
login names `password_file` when the password came from it.

The file was read once, when the driver was built: an admin who fixed a wrong password in it saw the
link refused until a restart, while the README says the TLS files are read again at each connect; and
the refusal said "check ... system_id and password" though the key set was password_file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import SmscSection
from gateway.linkstatus import LinkView
from smsc.base import LinkState
from smsc.cimd2.packet import Op, P, Packet
from smsc.smpp.link import SmppLink
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


def password_file(tmp_path: Path) -> Path:
    secret_file = tmp_path / "smsc-password"
    secret_file.write_text(RIGHT + "\n")
    secret_file.chmod(0o600)
    return secret_file


async def rebound_after(
    tmp_path: Path, secret_file: Path, change: Callable[[], object]
) -> tuple[str, list[dict[str, Any]]]:
    """A link bound with `secret_file`'s password; `change` done to the file as the SMSC drops the
    link, twice: the link's state and last error once it bound again or failed on the file, and its
    log."""
    async with HappySMSC(password=RIGHT) as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port)
        cfg.smsc[0] = cfg.smsc[0].model_copy(update={"password": None, "password_file": secret_file})
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                links = LinkView(gw.daemon.dispatcher)
                for bound in (1, 2, 3):
                    await gw.until(
                        lambda b=bound: (
                            "password_file" in links()["main"]["last_error"]  # refused, unreadable
                            or sum(e["event"] == "smpp.bound" for e in logs) >= b
                        )
                    )
                    if "password_file" in links()["main"]["last_error"]:
                        break
                    if bound < 3:
                        change()  # the file caught as the SMSC drops the link
                        smsc.drop_all()
                said = f"{links()['main']['state']}: {links()['main']['last_error']}"
    return said, logs


async def test_a_password_file_caught_empty_mid_rewrite_binds_with_the_last_password(tmp_path: Path) -> None:
    # `echo pw > file` or an editor saving in place truncates it first: a bind at that moment sent
    # '' and was refused (a failed login counted by the SMSC), then waited the longest pause.
    secret_file = password_file(tmp_path)
    said, logs = await rebound_after(tmp_path, secret_file, lambda: secret_file.write_text(""))
    assert said.startswith(f"{LinkState.ACTIVE.value}: ") and "refused" not in said, said
    (kept,) = [e for e in logs if e["event"] == "smsc.password_file_kept"]  # once, not at each bind
    assert kept["log_level"] == "warning"
    assert kept["error"] == f'[[smsc]] "main" password_file: {secret_file} is empty', kept
    assert RIGHT not in repr(logs)


async def test_a_password_file_gone_at_a_bind_binds_with_the_last_password(tmp_path: Path) -> None:
    secret_file = password_file(tmp_path)
    said, logs = await rebound_after(tmp_path, secret_file, lambda: secret_file.unlink(missing_ok=True))
    assert said.startswith(f"{LinkState.ACTIVE.value}: ") and "cannot read" not in said, said
    (kept,) = [e for e in logs if e["event"] == "smsc.password_file_kept"]
    error = f'[[smsc]] "main" password_file: cannot read {secret_file}: No such file or directory'
    assert kept["error"] == error, kept
    assert RIGHT not in repr(logs)


async def test_a_password_file_that_never_gave_a_password_is_the_links_error(tmp_path: Path) -> None:
    # With no password read before (a reader of its own, not the start's), there is none to fall
    # back on: the link says the file's fault and waits for it.
    secret_file = tmp_path / "smsc-password"
    async with HappySMSC(password=RIGHT) as smsc:
        values = {"name": "main", "type": "smpp", "port": smsc.port, "system_id": "smsgw", **FAST}
        section = SmscSection.model_validate(values | {"password_file": str(secret_file)})
        link = SmppLink(section.driver_settings(tmp_path), password=section.password_reader(tmp_path))
        with capture_logs() as logs:
            await link.start(RecordingEvents())
            try:
                for _ in range(600):  # hang guards, not timing assertions
                    if link.stats().last_error:
                        break
                    await asyncio.sleep(0.05)
                error = link.stats().last_error
                secret_file.write_text(RIGHT + "\n")
                for _ in range(600):
                    if link.stats().state == LinkState.ACTIVE:
                        break
                    await asyncio.sleep(0.05)
                state = link.stats().state
            finally:
                await link.stop(drain=False)
    assert error == f'[[smsc]] "main" password_file: cannot read {secret_file}: No such file or directory'
    assert state == LinkState.ACTIVE
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
