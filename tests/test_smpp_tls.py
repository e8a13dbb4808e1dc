"""SMPP over TLS: the gateway bound to the simulator's TLS port, and what an admin sees when it is not.

Operators offer SMPP over TLS instead of a VPN. A real daemon against the real simulator listening with a
certificate made for 127.0.0.1 / localhost (`tests.certs.make_cert_pair`); `smsgw status` as a separate
process on the daemon's status file. A refused handshake is a link fault like a refused connection: the
link retries, the SMS waits (never failed), the reason is said in words, logged once, and the link binds
at the next attempt once the CA file is right (the context is built again at each connect).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import SimulatorSection, SmscSection, load_config
from gateway.housekeeping import read_status
from gateway.linkstatus import LinkView
from smsc.base import LinkState
from smsc.simulator import Simulator
from smsc.smpp.link import SmppLink
from tests.certs import make_cert_pair, make_expired_pair
from tests.conftest import config_text, free_port, mail, running_gateway
from tests.fakes.smsc import EventRecorder
from tests.test_policy import to
from tests.test_process import smsgw
from tests.test_simulator import part


@asynccontextmanager
async def tls_simulator(tmp_path: Path, **cfg: Any) -> AsyncIterator[Simulator]:
    """The simulator with TLS on its SMPP and CIMD2 ports, its certificate in tmp_path/smsc."""
    cert, key = make_cert_pair(tmp_path / "smsc")
    settings: dict[str, Any] = {"smpp_port": 0, "cimd2_port": 0, "control_port": 0, "dlr_delay_seconds": 0}
    section = SimulatorSection(**settings, tls_cert_file=cert, tls_key_file=key, **cfg)
    sim = Simulator(section, tmp_path / "var" / "simulator.jsonl")
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def smsc_cert(tmp_path: Path) -> Path:
    return tmp_path / "smsc" / "cert.pem"


@asynccontextmanager
async def started(port: int, **cfg: Any) -> AsyncIterator[tuple[SmppLink, EventRecorder]]:
    section = SmscSection(name="op", type="smpp", port=port, system_id="smsgw", tls=True,
                          reconnect_min_seconds=0.05, reconnect_max_seconds=0.2, **cfg)  # fmt: skip
    link, ev = SmppLink(section.driver_settings(), password="secret"), EventRecorder()
    await link.start(ev)
    try:
        yield link, ev
    finally:
        await link.stop()


def written_status(state_dir: Path) -> dict[str, Any]:
    """The link as the daemon's status file has it, which `smsgw status` reads."""
    return dict((read_status(state_dir) or {}).get("links", {}).get("main", {}))


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Polled: a link retrying in the same state tells its EventRecorder nothing."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def written(tmp_path: Path, port: int, ca_file: Path) -> Path:
    path = tmp_path / "config.toml"
    tls = f'tls = true\ntls_ca_file = "{ca_file.name}"'  # relative: beside the config
    path.write_text(config_text(tmp_path, smsc_port=port, smsc_extra=tls))
    return path


async def test_the_gateway_bound_over_tls_sends_an_sms_and_takes_its_receipt(tmp_path: Path) -> None:
    async with tls_simulator(tmp_path) as sim:
        (tmp_path / "operator-ca.pem").write_bytes(smsc_cert(tmp_path).read_bytes())
        cfg = load_config(written(tmp_path, sim.smpp_port, tmp_path / "operator-ca.pem"))
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Over TLS"))).error is None
            await gw.until(lambda: gw.states() == ["delivered"])
            [received] = sim.smpp.received
            links = LinkView(gw.daemon.dispatcher)()
    assert received.text.endswith("Over TLS") and received.destination == "+48601123456"
    assert links["main"]["state"] == "active" and not links["main"]["last_error"], links


async def test_a_wrong_ca_keeps_the_link_down_with_the_reason_and_it_binds_once_the_ca_is_right(
    tmp_path: Path,
) -> None:
    """Nothing is failed meanwhile: the SMS waits for the link as it would for an SMSC that refuses the
    connection; `status` says why in words; the error is logged once, not at each attempt."""
    wrong, _ = make_cert_pair(tmp_path / "other")
    async with tls_simulator(tmp_path) as sim:
        ca = tmp_path / "operator-ca.pem"
        ca.write_bytes(wrong.read_bytes())
        path = written(tmp_path, sim.smpp_port, ca)
        cfg = load_config(path)
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                view = LinkView(gw.daemon.dispatcher)
                assert (await gw.send(mail(to("601123456"), "Waits for TLS"))).error is None
                await gw.until(lambda: (view()["main"]["down_attempts"] or 0) >= 3)
                await gw.until(
                    lambda: (
                        "unknown CA"
                        in str(
                            (read_status(cfg.state_dir) or {})
                            .get("links", {})
                            .get("main", {})
                            .get("last_error")
                        )
                    )
                )
                status = await asyncio.to_thread(smsgw, path, "status")
                waiting = gw.states()
                assert sim.smpp.received == []
                ca.write_bytes(smsc_cert(tmp_path).read_bytes())  # the admin puts the right CA in place
                await gw.until(lambda: gw.states() == ["delivered"])
    assert waiting == ["queued"], waiting
    line = next(line for line in status.stdout.splitlines() if line.startswith("link main:"))
    assert f"TLS 127.0.0.1:{sim.smpp_port}: certificate verify failed: unknown CA" in line, line
    assert "set tls_ca_file" in line, line
    said = [e for e in logs if e["event"] == "smpp.tls_failed"]
    assert len(said) == 1 and said[0]["log_level"] == "error", said
    assert len([e for e in logs if e["event"] == "smpp.link_down"]) >= 3


async def test_a_certificate_not_for_the_name_is_refused_and_tls_server_name_names_the_right_one(
    tmp_path: Path,
) -> None:
    async with tls_simulator(tmp_path) as sim:
        ca = smsc_cert(tmp_path)
        async with started(sim.smpp_port, tls_ca_file=ca, tls_server_name="smsc.operator.example") as (
            link,
            ev,
        ):
            await until(lambda: link.stats().down_attempts >= 2)
            error = link.stats().last_error
            assert link.state is not LinkState.ACTIVE
        # The operator handed out an IP address; its certificate holds a name.
        async with started(sim.smpp_port, tls_ca_file=ca, tls_server_name="localhost") as (link, ev):
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            assert (await link.submit(part("named"))).outcome.value == "accepted"
    assert error == (
        f"TLS 127.0.0.1:{sim.smpp_port}: certificate verify failed: the SMSC's certificate is not for"
        " smsc.operator.example (set tls_server_name to the name it was issued for)"
    )


async def test_a_client_certificate_the_smsc_requires_is_missing_then_given(tmp_path: Path) -> None:
    client_cert, client_key = make_cert_pair(tmp_path / "client")
    async with tls_simulator(tmp_path, tls_client_ca_file=client_cert) as sim:
        ca = smsc_cert(tmp_path)
        async with started(sim.smpp_port, tls_ca_file=ca) as (link, ev):
            await until(lambda: link.stats().down_attempts >= 2)
            error = link.stats().last_error
        async with started(
            sim.smpp_port, tls_ca_file=ca, tls_cert_file=client_cert, tls_key_file=client_key
        ) as (link, ev):
            await ev.wait_until(lambda: link.state is LinkState.ACTIVE)
            assert (await link.submit(part("by certificate"))).outcome.value == "accepted"
            await ev.wait_until(lambda: len(ev.reports) == 1)
    # The simulator (asyncio) drops its alert with the connection: the link asks the question.
    assert error == (
        "closed by peer before the login was answered, over TLS: does the SMSC require a client"
        " certificate (tls_cert_file, tls_key_file)?"
    ), error


async def test_tls_to_a_port_in_clear_says_so(tmp_path: Path) -> None:
    sim = Simulator(
        SimulatorSection(smpp_port=0, cimd2_port=0, control_port=0), tmp_path / "var" / "simulator.jsonl"
    )
    await sim.start()
    try:
        async with started(sim.smpp_port, tls_verify=False, response_timeout_seconds=2) as (link, _):
            await until(lambda: link.stats().down_attempts >= 1)
            error = link.stats().last_error
    finally:
        await sim.stop()
    assert error.startswith(f"TLS 127.0.0.1:{sim.smpp_port}: "), error
    assert error.endswith("no TLS from the SMSC on this port (is it its TLS port?)"), error


async def test_an_expired_certificate_is_said_so(tmp_path: Path) -> None:
    ca, cert, key = make_expired_pair(tmp_path / "expired")
    ports = {"smpp_port": 0, "cimd2_port": 0, "control_port": 0}
    section = SimulatorSection(**ports, tls_cert_file=cert, tls_key_file=key)
    sim = Simulator(section, tmp_path / "var" / "simulator.jsonl")
    await sim.start()
    try:
        async with started(sim.smpp_port, tls_ca_file=ca) as (link, _):
            await until(lambda: link.stats().down_attempts >= 1)
            error = link.stats().last_error
    finally:
        await sim.stop()
    said = "certificate verify failed: the SMSC's certificate has expired"
    assert error == f"TLS 127.0.0.1:{sim.smpp_port}: {said}", error


async def test_the_daemons_own_simulator_reads_its_tls_files_beside_the_config(tmp_path: Path) -> None:
    # `[simulator] tls_cert_file = "smsc/cert.pem"` is beside the config for check-config and
    # `smsgw simulator run`; the daemon's own simulator read it from the working directory (under
    # systemd /var/lib/smsgw): the start failed on a file check-config had found.
    make_cert_pair(tmp_path / "smsc")
    port = free_port()
    simulator = (
        f"[simulator]\nenabled = true\nsmpp_port = {port}\ncimd2_port = 0\ncontrol_port = 0\n"
        'dlr_delay_seconds = 0\ntls_cert_file = "smsc/cert.pem"\ntls_key_file = "smsc/key.pem"\n'
    )
    text = config_text(tmp_path, smsc_port=port, smsc_extra='tls = true\ntls_ca_file = "smsc/cert.pem"')
    path = tmp_path / "config.toml"
    path.write_text(text.replace("[simulator]\nenabled = false\n", simulator))
    cfg = load_config(path)
    assert Path.cwd() != tmp_path and not (Path.cwd() / "smsc" / "cert.pem").exists()
    async with running_gateway(cfg) as gw:
        assert (await gw.send(mail(to("601123456"), "Over TLS, the simulator in the daemon"))).error is None
        await gw.until(lambda: gw.states() == ["delivered"])


def test_smpp_and_cimd2_over_tls_on_the_daemons_loop(tmp_path: Path) -> None:
    # `smsgw run` and `smsgw simulator run` run on uvloop (`loop_runner`), whose TLS transport's
    # close cannot be replaced: every connect raised AttributeError there, and no TLS link (nor a
    # client of the simulator's TLS ports) ever came up, while these tests, on asyncio's loop, passed.
    from gateway.cli.common import loop_runner
    from smsc.cimd2.link import Cimd2Link

    async def both() -> list[str]:
        async with tls_simulator(tmp_path) as sim:
            ca = str(smsc_cert(tmp_path))
            states = []
            async with started(sim.smpp_port, tls_ca_file=ca) as (link, _):
                await until(lambda: link.state is LinkState.ACTIVE)
                states.append(f"smpp {link.state.value} {type(asyncio.get_running_loop()).__module__}")
            fast = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2, "system_id": "smsgw"}
            fast |= {"tls": True, "tls_ca_file": ca}
            section = SmscSection(name="c", type="cimd2", port=sim.cimd2_port, **fast)
            cimd2 = Cimd2Link(section.driver_settings(), password="secret")
            await cimd2.start(EventRecorder())
            try:
                await until(lambda: cimd2.state is LinkState.ACTIVE)
                states.append(f"cimd2 {cimd2.state.value}")
            finally:
                await cimd2.stop()
            return states

    states = loop_runner()(both())
    assert states == ["smpp active uvloop", "cimd2 active"], states
