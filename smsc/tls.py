"""TLS on the operator links and the simulator's listeners: the contexts, and a failed handshake in words.

Operators offer SMPP (and CIMD2) over TLS instead of a VPN. A link's context is built again for each
connect (`client_context`), so a CA file or client certificate the admin replaces is read at the next
attempt, without a restart. What the handshake refused is said as the admin can act on it
(`handshake_failure`): ssl's own text ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:
unable to get local issuer certificate (_ssl.c:1006)") names neither the peer nor the key to change.
Nothing here reads the gateway's config: `smsc/` stands alone (`smsc.settings`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import structlog

from smsc.outage import connect_failure
from smsc.settings import LinkSettings, LinkTls

log = structlog.get_logger(__name__)

# OpenSSL's X509_V_ERR_* codes, as SSLCertVerificationError.verify_code gives them.
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNKNOWN_CA = {2, 18, 19, 20, 21}  # no issuer known, self-signed (alone or in the chain), no local issuer
_NAME_MISMATCH = {62, 64}  # host name, IP address


# A TLS session the SMSC closed before answering the login, with no client certificate configured.
CLOSED_AT_LOGIN = (
    "before the login was answered, over TLS: does the SMSC require a client certificate"
    " (tls_cert_file, tls_key_file)?"
)
# A handshake that shows the port speaks no TLS (an answer in clear, a close at our hello, no answer).
NO_TLS = "no TLS from the SMSC on this port (is it its TLS port?)"


class TlsFileError(ValueError):
    """A TLS file that cannot be used: the message names the key and the file, never a secret."""


def _readable(key: str, path: Path, what: str) -> None:
    try:
        path.open("rb").close()  # ssl's own error does not say which file is missing
    except OSError as exc:
        raise TlsFileError(f"{key}: cannot read the {what} {path}: {exc.strerror}") from exc


def _load_chain(ctx: ssl.SSLContext, cert_file: Path, key_file: Path | None) -> None:
    """The certificate and its key (None: the certificate's file holds the key too)."""
    _readable("tls_cert_file", cert_file, "certificate")
    if key_file is not None:
        _readable("tls_key_file", key_file, "key")
    try:
        # A key with a passphrase: OpenSSL would ask for it on the terminal, in the event loop, at
        # every connect (the daemon stood still); it is refused instead, as the docs want it plain.
        ctx.load_cert_chain(
            certfile=cert_file, keyfile=key_file, password=refuse_passphrase(key_file or cert_file)
        )
    except TlsFileError:
        raise
    except (ssl.SSLError, OSError) as exc:
        raise TlsFileError(
            f"tls_cert_file, tls_key_file: cannot load the certificate {cert_file} with the key"
            f" {key_file or 'in it'} (not PEM, encrypted, or a key of another certificate):"
            f" {getattr(exc, 'reason', None) or exc}"
        ) from exc


def refuse_passphrase(key_file: Path, setting: str = "tls_key_file") -> Callable[[], str]:
    """The `password` callback of every `load_cert_chain` (the links', the gateway's listeners'):
    called only for an encrypted key, never answered. Without it OpenSSL asks for the passphrase on
    the terminal (a daemon at a terminal stood still, one without failed "Invalid argument").
    TlsFileError naming `setting` and the file."""

    def refuse() -> str:
        raise TlsFileError(
            f"{setting}: the key {key_file} is encrypted (it has a passphrase): give the key"
            f" unencrypted (openssl pkey -in {key_file.name} -out plain.key), readable by smsgw alone"
        )

    return refuse


def _load_ca(ctx: ssl.SSLContext, key: str, ca_file: Path) -> None:
    _readable(key, ca_file, "CA file")
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsFileError(f"{key}: {ca_file} holds no PEM certificate: {exc}") from exc


def client_context(tls: LinkTls) -> ssl.SSLContext:
    """The context a link connects with, or TlsFileError naming the file it could not use."""
    if tls.ca_file is None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:  # that CA alone, not the system's too: pinning an operator's CA (or its own certificate) means it
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_ca(ctx, "tls_ca_file", tls.ca_file)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file is not None:
        _load_chain(ctx, tls.cert_file, tls.key_file)
    return ctx


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None = None) -> ssl.SSLContext:
    """The simulator's listener context; with `client_ca_file` it requires a client certificate issued
    by it, as an operator that authenticates binds by certificate does."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(ctx, cert_file, key_file)
    if client_ca_file is not None:
        _load_ca(ctx, "tls_client_ca_file", client_ca_file)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_hostname(tls: LinkTls, host: str) -> str | None:
    """The name the certificate is checked against and sent as SNI: `server_name` when given, else the
    host (an IP address is then checked against the certificate's IP entries)."""
    return tls.server_name or host


def handshake_failure(host: str, port: int, name: str | None, exc: BaseException) -> str:
    """A refused TLS handshake in words, with the key to change: the link's last error, as `status` shows."""
    where = f"TLS {host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code, said = exc.verify_code, exc.verify_message or "certificate verify failed"
        if code in _NAME_MISMATCH:
            return (
                f"{where}: certificate verify failed: the SMSC's certificate is not for {name}"
                " (set tls_server_name to the name it was issued for)"
            )
        if code == _EXPIRED:
            return f"{where}: certificate verify failed: the SMSC's certificate has expired"
        if code == _NOT_YET_VALID:
            return f"{where}: certificate verify failed: the SMSC's certificate is not valid yet (the clock?)"
        if code in _UNKNOWN_CA:
            return (
                f"{where}: certificate verify failed: unknown CA ({said}); set tls_ca_file to the CA the"
                " operator gave, or to the SMSC's own certificate if it is self-signed"
            )
        return f"{where}: certificate verify failed: {said}"
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | asyncio.IncompleteReadError):
        return f"{where}: the SMSC closed the connection in the handshake: {NO_TLS}"
    if isinstance(exc, ssl.SSLError):
        return f"{where}: handshake failed: {alert_words(str(exc))}"
    return ""


async def open_stream(
    host: str, port: int, tls: LinkTls | None, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A link's connection, in clear or over TLS (the handshake within the same `timeout`); raises
    OSError, TimeoutError or TlsFileError, which `connect_words` says."""
    if tls is None:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    ctx = client_context(tls)
    opened = asyncio.open_connection(
        host, port, ssl=ctx, server_hostname=server_hostname(tls, host), ssl_handshake_timeout=timeout
    )
    reader, writer = await asyncio.wait_for(opened, timeout)
    close_once(writer)
    return reader, writer


def close_once(writer: asyncio.StreamWriter) -> None:
    """Make a second close of a TLS connection a no-op, as it is in clear. CPython 3.11's TLS transport
    lets go of its protocol at a second close, and every later look at it (the write buffer's size
    `smsc.backpressure` asks at each close, a write) raised AttributeError: the links and the
    simulator close a connection more than once by design (an abort after a close). uvloop's TLS
    transport (the daemon's loop) takes a second close well, and its `close` cannot be replaced: the
    replacement raised AttributeError at every connect there, and no TLS link ever came up."""
    transport = writer.transport
    close = transport.close

    def once() -> None:
        if not transport.is_closing():
            close()

    with contextlib.suppress(AttributeError):  # uvloop: read-only, and not needed
        transport.close = once  # type: ignore[method-assign]


def connect_words(host: str, port: int, tls: LinkTls | None, exc: BaseException) -> str:
    """Why `open_stream` failed, as the link's last error: a TLS fault as a link fault of its own
    kind, anything else as a refused connection is said (`smsc.outage.connect_failure`)."""
    if tls is not None:
        if isinstance(exc, TlsFileError):
            return f"TLS {host}:{port}: {exc}"
        if words := handshake_failure(host, port, server_hostname(tls, host), exc):
            return words
        if isinstance(exc, TimeoutError):
            return f"connect {host}:{port}: no connection or TLS handshake in time: {NO_TLS}"
    return connect_failure(host, port, exc)


HEAD_SHOWN = 32  # characters of a foreign peer's first line quoted: enough to tell SMTP, HTTP or SSH


def printable_head(head: bytes) -> str | None:
    """A peer's first line when it is text (an SMTP or FTP banner, an HTTP answer, an SSH version, a
    CIMD2 packet's fields after its STX), cut short and with nothing but printable ASCII; None for
    binary bytes, which say nothing an admin could read."""
    line = head.lstrip(b"\x00\x02").split(b"\n", 1)[0].rstrip(b"\r")
    if len(line) < 4 or not all(32 <= b < 127 or b == 9 for b in line[:HEAD_SHOWN]):
        return None
    text = " ".join(line[:HEAD_SHOWN].decode("ascii").split())
    return text + "\u2026" if len(line) > HEAD_SHOWN else text


def foreign_peer(protocol: str, host: str, port: int, link: str, said: str) -> str:
    """A link pointed at a port that speaks something else (a mail server, a web server, the other
    protocol), in words with the keys to change: "unframeable bytes from peer" or "closed by the
    SMSC" alone sent the admin looking at the SMSC. `said`: what it sent, as `printable_head` or in
    words."""
    quoted = json.dumps(link, ensure_ascii=False)  # as TOML quotes it (gateway.configbase.quoted)
    return (
        f"the peer at {host}:{port} does not speak {protocol} ({said}):"
        f" check [[smsc]] {quoted} host, port and type"
    )


def alert_words(text: str) -> str:
    """What an SSL error's text says, for an admin: a TLS 1.3 server refuses a client certificate
    after the handshake, so such a refusal reaches the link as a read error, not at the connect."""
    upper = text.upper()
    if "CERTIFICATE_REQUIRED" in upper:
        return "the SMSC requires a client certificate: set tls_cert_file and tls_key_file"
    if "UNKNOWN_CA" in upper or "BAD_CERTIFICATE" in upper or "CERTIFICATE_UNKNOWN" in upper:
        return "the SMSC refused our client certificate (tls_cert_file): not one it accepts"
    if "WRONG_VERSION_NUMBER" in upper or "RECORD_LAYER_FAILURE" in upper:
        return NO_TLS
    return text


def tls_reason(reason: str) -> str:
    """A connection's close reason, with an SSL alert in it said in words (`alert_words`)."""
    if "[SSL" not in reason:
        return reason
    return f"TLS: {alert_words(reason)}"


class TlsFaults:
    """Logs a link's TLS failure once per cause: the same refusal on every reconnect is one error line
    (the per-attempt link-down line still says each attempt), and a new cause logs again. Forgotten
    at a bind, so that the same fault after a good session is said again."""

    def __init__(self, link: str, event: str) -> None:
        self.link, self.event = link, event
        self._said: set[str] = set()

    def failed(self, words: str) -> None:
        if words not in self._said:
            self._said.add(words)
            log.error(self.event, link=self.link, error=words)

    def connect_failed(self, cfg: LinkSettings, exc: BaseException) -> str:
        """`connect_words` for the link's last error; a TLS fault among them logged (once)."""
        words = connect_words(cfg.host, cfg.port, cfg.tls, exc)
        if words.startswith("TLS "):
            self.failed(words)
        return words

    def closed(self, reason: str, tls: LinkTls | None) -> str:
        """A connection's close reason before the login was answered, an SSL alert in it in words
        (`tls_reason`) and logged (once). An SMSC that refuses a TLS client for want of a certificate
        may close without the alert (an asyncio server drops its unsent alert with the connection):
        the link then asks the question, since the admin is the one who can answer it."""
        words = tls_reason(reason)
        if words == reason and tls is not None and tls.cert_file is None:
            words = f"{reason or 'closed'} {CLOSED_AT_LOGIN}"
        if words != reason:
            self.failed(words)
        return words

    def bound(self) -> None:
        self._said.clear()
