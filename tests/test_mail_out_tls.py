"""Mail the gateway sends, against a real relay (aiosmtpd on loopback): STARTTLS to a relay whose
certificate is self-signed or from a company CA, and `BODY=8BITMIME` for mail with 8-bit bytes.

The relay is an SMTP server with a self-signed certificate for `localhost` and 127.0.0.1, as a
company Postfix has one: the system's CAs do not know it, so without `relay_tls_ca_file` (or
`relay_tls_verify = false`) every outgoing mail was deferred for five days with an OpenSSL message.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from structlog.testing import capture_logs

from gateway.config import Config, ConfigError, parse_config
from gateway.mailer import build_mailer
from tests.certs import make_cert_pair, make_expired_pair
from tests.conftest import STAFF, Sink, config_text, free_port, running_gateway, smtp_sink
from tests.test_bounces import FALLBACK, WITH_FALLBACK, bounce, delivered

SENDER = "smsgw@sms.example.com"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


class RecordingRelay(Sink):
    """The conftest sink that also notes, per mail, its MAIL parameters and whether it came over TLS."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[list[str]] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.options.append(list(envelope.mail_options))
        self.tls.append(session.ssl is not None)
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def tls_relay(
    port: int, pair: tuple[Path, Path], host: str = "127.0.0.1"
) -> AsyncIterator[RecordingRelay]:
    """A relay that takes mail only after STARTTLS, with the given certificate and key."""
    relay = RecordingRelay()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*pair)
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(relay, hostname="relay.test", tls_context=context, require_starttls=True), host, port
    )
    try:
        yield relay
    finally:
        server.close()
        await server.wait_closed()


def tls_config(tmp_path: Path, relay: str, port: int, mail: str, starttls: bool = True) -> Config:
    """The tests' usual config with `[mail] relay = RELAY`, relay_starttls and the given [mail] lines."""
    text = config_text(tmp_path, smsc_port=1, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    assert anchor in text
    tls = f"relay_starttls = {str(starttls).lower()}\n"
    text = text.replace(anchor, f'relay = "{relay}:{port}"\n{tls}{mail}', 1)
    return parse_config(text, source="test config", base_dir=tmp_path)


def outbox(gw: Any) -> list[tuple[str, int, str | None]]:
    return gw.store.db.conn.execute("SELECT state, attempts, last_error FROM outbox ORDER BY id").fetchall()


async def send_one(
    cfg: Config, content: bytes = b"Subject: hi\r\n\r\nhi\r\n"
) -> tuple[list[Any], list[dict[str, Any]]]:
    """One mail through the running gateway's outbox: its row once it was sent or tried, and the log."""
    with capture_logs() as logs:
        async with running_gateway(cfg) as gw:
            box = gw.store.outbox
            await gw.store.write(lambda: box.enqueue_mail("notice", SENDER, STAFF, content))
            await gw.until(lambda: outbox(gw)[0][1] >= 1 and outbox(gw)[0][0] != "active", timeout=20)
            rows = outbox(gw)
    return rows, logs


async def test_an_untrusted_relay_certificate_defers_the_mail_naming_the_settings(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    port = free_port()
    async with tls_relay(port, tls_pair) as relay:
        rows, logs = await send_one(tls_config(tmp_path, "localhost", port, ""))
    ((state, attempts, error),) = rows
    assert (state, attempts, relay.messages) == ("queued", 1, [])  # tried again later, not failed
    assert error is not None and "the relay's certificate is not trusted" in error
    assert "self-signed certificate" in error  # OpenSSL's reason stays beside the words
    assert "relay_tls_ca_file" in error and "relay_tls_verify = false" in error
    (deferred,) = [e for e in logs if e["event"] == "mail.deferred"]
    assert (
        "the relay's certificate is not trusted" in deferred["error"]
        and "relay_tls_ca_file" in deferred["error"]
    )


async def test_a_relay_certificate_from_the_configured_ca_file_is_trusted(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    # A relative name is read beside the config, as every path in it is.
    shutil.copy(tls_pair[0], tmp_path / "company-ca.pem")
    port = free_port()
    async with tls_relay(port, tls_pair) as relay:
        cfg = tls_config(tmp_path, "localhost", port, 'relay_tls_ca_file = "company-ca.pem"\n')
        rows, _logs = await send_one(cfg)
    assert [(state, error) for state, _n, error in rows] == [("sent", None)]
    assert len(relay.messages) == 1 and relay.tls == [True]


async def test_without_verification_a_relay_on_loopback_takes_the_mail_over_tls(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    port = free_port()
    async with tls_relay(port, tls_pair) as relay:
        rows, _logs = await send_one(tls_config(tmp_path, "127.0.0.1", port, "relay_tls_verify = false\n"))
    assert [(state, error) for state, _n, error in rows] == [("sent", None)]
    assert len(relay.messages) == 1 and relay.tls == [True]  # still encrypted, only not checked


async def test_a_certificate_for_another_name_is_said_to_be_for_another_name(
    tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    # The CA is trusted, but the certificate names localhost and 127.0.0.1, not 127.0.0.2.
    port = free_port()
    async with tls_relay(port, tls_pair, host="127.0.0.2") as relay:
        cfg = tls_config(tmp_path, "127.0.0.2", port, f'relay_tls_ca_file = "{tls_pair[0]}"\n')
        rows, _logs = await send_one(cfg)
    ((state, _attempts, error),) = rows
    assert state == "queued" and relay.messages == []
    assert error is not None and "does not name '127.0.0.2'" in error and "relay_tls_verify = false" in error


@pytest.mark.parametrize(
    ("starttls", "mail", "message"),
    [
        (False, 'relay_tls_ca_file = "ca.pem"\n', "only with relay_starttls = true"),
        (False, "relay_tls_verify = false\n", "only with relay_starttls = true"),
        (True, 'relay_tls_ca_file = "ca.pem"\nrelay_tls_verify = false\n', "not both"),
    ],
    ids=["ca-without-starttls", "no-verify-without-starttls", "ca-and-no-verify"],
)
def test_tls_settings_that_would_change_nothing_are_refused(
    tmp_path: Path, starttls: bool, mail: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        tls_config(tmp_path, "localhost", free_port(), mail, starttls=starttls)


def test_a_ca_file_that_cannot_be_used_stops_the_start_with_its_name(tmp_path: Path) -> None:
    cfg = tls_config(tmp_path, "localhost", free_port(), 'relay_tls_ca_file = "company-ca.pem"\n')
    with pytest.raises(ConfigError, match=f"cannot read relay_tls_ca_file {tmp_path / 'company-ca.pem'}"):
        build_mailer(cfg)
    (tmp_path / "company-ca.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate"):
        build_mailer(cfg)


async def test_mail_with_8bit_bytes_is_sent_as_8bitmime_and_ascii_mail_as_it_is(tmp_path: Path) -> None:
    # RFC 6152: a forwarded bounce carries its original's 8-bit text; the relay offers 8BITMIME and
    # is told. A mail that is ASCII needs no BODY parameter.
    port = free_port()
    async with smtp_sink(port, RecordingRelay()) as relay:
        assert isinstance(relay, RecordingRelay)
        text = config_text(tmp_path, smsc_port=1, relay_port=port, extra=WITH_FALLBACK)
        cfg = parse_config(text, source="test config", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            assert (await delivered(gw.port, bounce())).startswith("250 ")
            await relay.wait(1)
            box = gw.store.outbox
            await gw.store.write(
                lambda: box.enqueue_mail("notice", SENDER, STAFF, b"Subject: hi\r\n\r\nhi\r\n")
            )
            await relay.wait(2)
    (_forward_from, forward_to, forward), (_f, _t, ascii_mail) = relay.messages
    assert forward_to == [FALLBACK] and not forward.isascii() and ascii_mail.isascii()
    assert "BODY=8BITMIME" in relay.options[0]
    assert not any(o.startswith("BODY=") for o in relay.options[1])


async def test_an_expired_relay_certificate_is_said_to_be_out_of_date(tmp_path: Path) -> None:
    # Issued by the CA the config names, but expired: the advice was to set the CA file it had
    # set, or to turn the checks off.
    ca, cert, key = make_expired_pair(tmp_path / "expired")
    port = free_port()
    async with tls_relay(port, (cert, key)) as relay:
        rows, _logs = await send_one(tls_config(tmp_path, "localhost", port, f'relay_tls_ca_file = "{ca}"\n'))
    ((state, _attempts, error),) = rows
    assert (state, relay.messages) == ("queued", [])
    assert error is not None and "the relay's certificate is out of date (certificate has expired)" in error
    assert "renew the certificate on the relay, or check this machine's clock" in error
    assert "relay_tls_ca_file" not in error and "relay_tls_verify" not in error
