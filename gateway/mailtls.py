"""The relay's STARTTLS: what the gateway does with a relay's TLS, by `[mail] relay_starttls`.

`true`: STARTTLS is required and the certificate verified (`relay_tls_verify`, against
`relay_tls_ca_file` or the system's CAs); a failed check is `RelayCertificateError`, worded with the
settings that fix it. `"when-offered"`: STARTTLS only where the relay's EHLO offers it, unverified
and down to TLS 1.0, as Postfix `may` does (RFC 7435): against eavesdropping only, since the
alternative is plain text. A handshake that fails is `HandshakeFailed`, and `gateway.mailer` sends
the mail again in clear rather than not at all. `false`: plain text.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path
from typing import Any

import aiosmtplib

from gateway.config import Config
from gateway.configbase import ConfigError
from gateway.configservices import SMTPS_PORT, MailSection


class RelayCertificateError(Exception):
    """The relay's certificate failed verification at STARTTLS.

    A matter of the gateway's setup, not of the mail: it is retried like any connection failure,
    but its text names the settings that fix it, as OpenSSL's own words ("self-signed
    certificate") leave an admin guessing for the five days the outbox keeps trying.
    """


class RelayWithoutStartTLS(Exception):
    """`relay_starttls = true` and the relay's EHLO offers no STARTTLS: its setup, not the mail's.

    Named apart from aiosmtplib's bare `SMTPException`, which no fault list can take as a whole: as
    such the mail's error was no relay fault, and mail deferred for it was not woken when the relay
    was fixed, and status said nothing until the mail had waited half an hour.
    """


STARTTLS_NOT_OFFERED = "SMTP STARTTLS extension not supported by server."


def no_starttls(exc: BaseException, host: str) -> RelayWithoutStartTLS | None:
    """aiosmtplib's refusal to go on in clear with STARTTLS required, in words that say what to change."""
    if type(exc) is not aiosmtplib.SMTPException or str(exc) != STARTTLS_NOT_OFFERED:
        return None
    return RelayWithoutStartTLS(
        f"the relay {host!r} does not offer STARTTLS, which [mail] relay_starttls = true requires:"
        ' enable TLS on the relay, or set relay_starttls = "when-offered" to send in clear to a relay'
        " on loopback or a trusted LAN"
    )


def required_tls(cfg: MailSection, ca_file: Path | None) -> dict[str, Any]:
    """The relay client's TLS settings: STARTTLS, verified as configured, only with `relay_starttls
    = true`, TLS from the connection on with `relay_implicit_tls`; "when-offered" starts it itself
    (`starttls_if_offered`), unverified."""
    implicit = cfg.relay_implicit_tls
    required = cfg.relay_starttls is True or implicit
    return {
        "start_tls": required and not implicit,
        "use_tls": implicit,
        "validate_certs": cfg.relay_tls_verify if required else False,
        "cert_bundle": str(ca_file) if ca_file is not None and required else None,
    }


def implicit_tls_hint(exc: BaseException, port: int, cfg: MailSection) -> Exception | None:
    """A greeting that never came from port 465 without `relay_implicit_tls`, said so: the relay
    waits for a TLS handshake, and "Timed out waiting for server ready message" was all `smsgw
    outbox list` showed for five days. The same type, so that the fault stays a timeout. And the
    other way round (`plain_text_hint`)."""
    if cfg.relay_implicit_tls:
        return plain_text_hint(exc, port)
    if not isinstance(exc, aiosmtplib.SMTPConnectTimeoutError) or port != SMTPS_PORT:
        return None
    return aiosmtplib.SMTPConnectTimeoutError(
        f"{exc}: port {SMTPS_PORT} is SMTPS, TLS from the connection on; set [mail] relay_implicit_tls"
        " = true (or relay to the STARTTLS port, 587 or 25)"
    )


def plain_text_hint(exc: BaseException, port: int) -> Exception | None:
    """A relay that answered a TLS handshake (`relay_implicit_tls`) with its plain-text greeting,
    said so: OpenSSL's "[SSL: WRONG_VERSION_NUMBER]" was all `smsgw outbox list` showed while the
    mail was retried for five days. The same type, so that the fault stays the relay's."""
    if not isinstance(exc, aiosmtplib.SMTPConnectError):
        return None
    cause = exc.__cause__
    if not isinstance(cause, ssl.SSLError) or cause.reason != "WRONG_VERSION_NUMBER":
        return None
    fix = "leave [mail] relay_implicit_tls out" + (
        f", or use its SMTPS port ({SMTPS_PORT})" if port != SMTPS_PORT else ""
    )
    return aiosmtplib.SMTPConnectError(f"{exc}: the relay answered in plain text on port {port}: {fix}")


class HandshakeFailed(Exception):
    """STARTTLS offered by the relay did not give a TLS session (`[mail] relay_starttls = "when-offered"`)."""


def _opportunistic_context() -> ssl.SSLContext:
    """TLS against eavesdropping only (RFC 7435): no certificate check, as Postfix `may` does not
    check, and any version a relay speaks down to TLS 1.0: the alternative is plain text."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


async def starttls_if_offered(client: aiosmtplib.SMTP) -> None:
    """STARTTLS when the relay's EHLO offers it; the session stays in clear otherwise."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        return  # a relay without ESMTP offers nothing; the transaction (`gateway.mailer`) says HELO
    if not client.supports_extension("starttls"):
        return
    try:
        await client.starttls(tls_context=_opportunistic_context())
    except (ssl.SSLError, aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        client.close()
        raise HandshakeFailed() from exc


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: the certificate is
# trusted but names another host (a relay written as 127.0.0.1, a certificate for its name).
_NAME_MISMATCH = frozenset({62, 64})
# X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED: trusted, but out of its dates.
_OUT_OF_DATE = frozenset({9, 10})


def untrusted(host: str, exc: ssl.SSLCertVerificationError, ca_file: Path | None) -> str:
    """The certificate failure in words that say what to change in the config."""
    why = (exc.verify_message or str(exc)).rstrip(".")
    if exc.verify_code in _NAME_MISMATCH:
        problem = f"the relay's certificate does not name {host!r}, the host in [mail] relay ({why})"
        fix = (
            "set [mail] relay to the name the certificate is issued for, or relay_tls_verify = false"
            " for a relay on loopback or a trusted LAN"
        )
    elif exc.verify_code in _OUT_OF_DATE:
        # Told to set the CA file it had set, an admin would only be left with turning checks off.
        problem = f"the relay's certificate is out of date ({why})"
        fix = "renew the certificate on the relay, or check this machine's clock (`timedatectl`)"
    else:
        against = f"the CA file {ca_file}" if ca_file is not None else "the system's CA certificates"
        problem = f"the relay's certificate is not trusted: {why}, checked against {against}"
        fix = (
            "set [mail] relay_tls_ca_file to the CA certificate that issued it (PEM), or"
            " relay_tls_verify = false for a relay on loopback or a trusted LAN"
        )
    return f"{problem}; {fix}"


def relay_ca_file(cfg: Config) -> Path | None:
    """`[mail] relay_tls_ca_file` beside the config, loaded once at start: an unreadable or non-PEM
    file stops the start with its name, not every mail for five days with an OpenSSL message."""
    if cfg.mail.relay_tls_ca_file is None:
        return None
    path = cfg.path(cfg.mail.relay_tls_ca_file)
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(f"mail: relay_tls_ca_file {path} holds no PEM certificate ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"mail: cannot read relay_tls_ca_file {path}: {exc.strerror}") from exc
    return path
