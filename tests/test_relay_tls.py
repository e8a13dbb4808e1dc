"""The relay port's STARTTLS (RFC 3207), as a company mail server that requires TLS meets it.

Postfix with `smtp_tls_security_level = encrypt` (or Exchange with TLS forced) defers its mail for
ever to a port without STARTTLS. The relay port offers it with the submission certificate and
never advertises or accepts AUTH, before or after TLS (R-2.1 b: the network and the ACL'd sender
are the identity there); MAIL's `AUTH=<>`, which Postfix sends once it has seen AUTH anywhere, is
ignored. Commands pipelined behind STARTTLS are dropped (CVE-2011-0411). Each test runs with the
relay in the daemon and in an intake worker process, as the shipped config has it; real smtplib
clients on 127.0.0.1, the SMS to a fake SMSC over SMPP.
"""

from __future__ import annotations

import os
import signal
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_intake_workers import log_events, stop, until, worker_config_text, worker_pids
from tests.test_process import start_daemon
from tests.test_submission import RCPT, blocking, client_tls, connect, plain, reply, submission_config
from tests.test_submission import tls_pair as tls_pair  # the module's certificate fixture

MODES = pytest.mark.parametrize("workers", [0, 1], ids=["relay-in-daemon", "relay-in-worker"])


def relay_config(tmp_path: Path, smsc_port: int, tls: Any, workers: int) -> Any:
    """The submission test config (its certificate), the relay port in `workers` worker processes."""
    return submission_config(tmp_path, smsc_port, tls, intake_processes=workers)


def auth_line(ehlo_resp: bytes | None) -> list[bytes]:
    return [line for line in (ehlo_resp or b"").splitlines() if line.upper().startswith(b"AUTH")]


@MODES
async def test_the_relay_port_offers_starttls_and_never_auth(
    tmp_path: Path, tls_pair: Any, workers: int
) -> None:
    async with (
        HappySMSC() as smsc,
        running_gateway(relay_config(tmp_path, smsc.port, tls_pair, workers)) as gw,
    ):
        assert (gw.daemon.intake is not None) == bool(workers)  # the worker, not the daemon, listens

        def session() -> dict[str, Any]:
            seen: dict[str, Any] = {}
            with connect(gw.port) as c:
                c.ehlo("mx.acme.example")
                seen["plain"] = (c.has_extn("starttls"), auth_line(c.ehlo_resp))
                seen["auth_plain"] = reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "x")))
                if not c.has_extn("starttls"):
                    return seen
                c.starttls(context=client_tls(tls_pair))
                c.ehlo("mx.acme.example")
                seen["tls"] = (c.has_extn("starttls"), auth_line(c.ehlo_resp), c.has_extn("pipelining"))
                seen["auth_tls"] = [
                    reply(c.docmd("AUTH", "PLAIN " + plain(STAFF, "x"))),
                    reply(c.docmd("AUTH", "LOGIN")),
                ]
                # What Postfix sent while AUTH was advertised here (others send it regardless): taken,
                # its value ignored.
                seen["mail"] = reply(c.mail(STAFF, ["AUTH=<>"]))
                seen["rcpt"] = reply(c.rcpt(RCPT))
                seen["data"] = c.data(mail(RCPT, "Over TLS on the relay port").as_bytes())[0]
            return seen

        seen = await blocking(session)
        if "data" in seen:
            await smsc.wait_for(1)
    assert seen["plain"] == (True, [])
    assert seen["tls"] == (False, [], True)  # RFC 3207 4.2: no STARTTLS inside TLS; still PIPELINING
    # 502: not implemented here (a client's library shows its admin the text: the submission port)
    assert [a[:10] for a in [seen["auth_plain"], *seen["auth_tls"]]] == ["502 5.5.1 "] * 3
    assert seen["mail"] == replies.OK_SENDER and seen["rcpt"] == replies.OK_RCPT and seen["data"] == 250
    assert [s.text for s in smsc.received] == ["Over TLS on the relay port"]


@MODES
async def test_commands_pipelined_behind_starttls_are_discarded(
    tmp_path: Path, tls_pair: Any, workers: int
) -> None:
    # CVE-2011-0411: plain-text commands sent in the same write as STARTTLS must not be run inside
    # the TLS session, where they would pass for the client's own. Only the replies to what the
    # client sends after the handshake may come back.
    async with running_gateway(relay_config(tmp_path, 1, tls_pair, workers)) as gw:

        def session() -> tuple[int, list[str]]:
            c = connect(gw.port)
            try:
                c.ehlo("mx.acme.example")
                c.send(f"STARTTLS\r\nHELP\r\nMAIL FROM:<{STAFF}>\r\n")  # one write, one segment
                code, _ = c.getreply()
                if code != 220:
                    return code, []
                c.sock = client_tls(tls_pair).wrap_socket(c.sock, server_hostname="127.0.0.1")
                c.file = None
                # One reply per command from here on: a reply to an injected command, were it run
                # inside TLS, would come first and shift every answer.
                answers = [reply(c.docmd("NOOP")), str(c.docmd("EHLO", "mx.acme.example")[0])]
                answers += [reply(c.docmd("MAIL", f"FROM:<{STAFF}>")), reply(c.docmd("QUIT"))]
                return code, answers
            finally:
                c.close()

        code, answers = await blocking(session)
    assert code == 220
    assert answers == [replies.OK, "250", replies.OK_SENDER, "221 2.0.0 Bye"]


async def test_without_a_certificate_the_relay_port_offers_no_starttls(tmp_path: Path) -> None:
    # No submission port, no certificate: the relay port is as before, plain SMTP only.
    cfg = submission_config(tmp_path, 1, None)
    cfg = cfg.model_copy(update={"smtp": cfg.smtp.model_copy(update={"submission_listen": None})})
    async with running_gateway(cfg) as gw:

        def session() -> tuple[bool, str]:
            with connect(gw.port) as c:
                c.ehlo("mx.acme.example")
                return c.has_extn("starttls"), reply(c.docmd("STARTTLS"))

        offered, answer = await blocking(session)
    assert not offered and answer == "454 4.7.0 TLS not available"


@MODES
async def test_a_certificate_the_relay_port_cannot_read_stops_the_start(tmp_path: Path, workers: int) -> None:
    # Without a submission port nothing else loads the certificate: in a worker each start failed
    # in turn (a restart loop, the port never served); the daemon now refuses it, naming the file.
    missing = (tmp_path / "gone-cert.pem", tmp_path / "gone-key.pem")
    cfg = submission_config(tmp_path, 1, missing, intake_processes=workers)
    cfg = cfg.model_copy(update={"smtp": cfg.smtp.model_copy(update={"submission_listen": None})})
    with pytest.raises(ConfigError, match=r"gone-cert\.pem"):
        async with running_gateway(cfg):
            pass


def old_tls_client() -> ssl.SSLContext:
    """A mail server that speaks no TLS above 1.1 (old appliances, scanners, Exchange 2010)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # opportunistic TLS checks no certificate (RFC 7435)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@MODES
async def test_a_mail_server_limited_to_tls_1_1_gets_its_mail_in(
    tmp_path: Path, tls_pair: Any, workers: int
) -> None:
    # STARTTLS offered with the default minimum (TLS 1.2): the handshake failed and the server
    # deferred every mail, where before the port had STARTTLS it sent them in clear.
    async with (
        HappySMSC() as smsc,
        running_gateway(relay_config(tmp_path, smsc.port, tls_pair, workers)) as gw,
    ):

        def session() -> tuple[str, int]:
            with connect(gw.port) as c:
                c.ehlo("old-mx.acme.example")
                c.starttls(context=old_tls_client())
                version = c.sock.version()  # type: ignore[union-attr]
                c.ehlo("old-mx.acme.example")
                refused = c.sendmail(STAFF, [RCPT], mail(RCPT, "Old TLS").as_bytes())
                return str(version), 550 if refused else 250

        version, code = await blocking(session)
        await smsc.wait_for(1)
    assert version in ("TLSv1", "TLSv1.1") and code == 250
    assert [s.text for s in smsc.received] == ["Old TLS"]


async def test_relay_starttls_false_keeps_the_relay_port_plain(tmp_path: Path, tls_pair: Any) -> None:
    cfg = relay_config(tmp_path, 1, tls_pair, 0)
    cfg = cfg.model_copy(update={"smtp": cfg.smtp.model_copy(update={"relay_starttls": False})})
    async with running_gateway(cfg) as gw:

        def offered() -> bool:
            with connect(gw.port) as c:
                c.ehlo("mx.acme.example")
                return c.has_extn("starttls")

        assert not await blocking(offered)


async def test_a_worker_restarted_after_its_certificate_broke_serves_without_starttls(
    tmp_path: Path, tls_pair: Any
) -> None:
    # The daemon checks the files at its start; a worker restarted after they changed (a renewal
    # half done, a key made unreadable) failed every start, and the relay port served nobody.
    cert, key = make_cert_pair(tmp_path / "tls")
    smtp_port = free_port()
    path = tmp_path / "config.toml"
    text = worker_config_text(tmp_path, 1, smtp_port, 1)
    path.write_text(text.replace("[smtp]\n", f'[smtp]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'))
    proc = await start_daemon(path, smtp_port)
    try:
        await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 1, "the worker serving")
        key.write_text("not a key\n")
        (worker,) = worker_pids(tmp_path)
        os.kill(worker, signal.SIGKILL)
        await until(lambda: len(log_events(tmp_path, "intake.worker_serving")) == 2, "the worker back", 400)
        (unusable,) = log_events(tmp_path, "smtp.relay_tls_unusable")
        assert unusable["level"] == "error" and str(key) in str(unusable["error"])

        def session() -> tuple[bool, int]:
            with connect(smtp_port) as c:
                c.ehlo("mx.acme.example")
                return c.has_extn("starttls"), c.mail(STAFF)[0]

        assert await blocking(session) == (False, 250)
    finally:
        await stop(proc)
