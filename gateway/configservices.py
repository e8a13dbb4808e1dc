"""The [smtp], [mail] and [web] sections: where the gateway listens, and where its own mail goes.

Part of the configuration schema (gateway/config.py, which checks across sections, such as two
listeners on one port).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.configbase import (
    SECRET,
    ConfigError,
    _Section,
    credential_path,
    host_port,
    plain_address,
    quoted,
)

# A DNS name as a browser sends it in Host: labels of letters, digits and hyphens.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}\.?")

MAILDIR_PREFIX = "maildir:"
WHEN_OFFERED = "when-offered"  # [mail] relay_starttls: opportunistic TLS to the relay
# The port of SMTPS (RFC 8314 3.3): a relay there says nothing until the TLS handshake.
SMTPS_PORT = 465


class SmtpSection(_Section):
    listen: str = "127.0.0.1:2525"
    submission_listen: str | None = "127.0.0.1:2587"
    tls_cert_file: Path | None = Field(None, strict=False)
    tls_key_file: Path | None = Field(None, strict=False)
    relay_starttls: bool = True
    max_message_bytes: int = Field(1_048_576, ge=1024, le=64 * 1024 * 1024)
    timeout_seconds: float = Field(300, gt=0)
    auth_max_failures: int = Field(3, ge=1)  # per (client address, login): one person's typos
    auth_max_failures_per_address: int = Field(20, ge=1)  # all logins of one address (an office's NAT)
    auth_max_failures_per_login: int = Field(10, ge=1)  # one login from all addresses (rotating guessers)
    auth_max_failures_overall: int = Field(60, ge=1)  # per minute, all addresses and logins
    auth_failure_window_seconds: float = Field(300, gt=0)
    max_connections: int = Field(500, ge=1)  # both listeners together; keep below LimitNOFILE
    max_connections_per_address: int = Field(50, ge=1)  # per IPv4 address or IPv6 /64 (Postfix: 50)
    max_commands_without_mail: int = Field(250, ge=10)  # 100 RCPT and the rest of a mail fit
    intake_processes: int = Field(0, ge=0, le=64)  # relay port in worker processes; 0: in the daemon

    @field_validator("listen", "submission_listen")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v:  # "" turns the submission port off (TOML has no null)
            host_port(v, "a listen address")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> SmtpSection:
        # One without the other left the submission port silently off (tlscert.with_certificate).
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "give both tls_cert_file and tls_key_file, or neither (a self-signed pair is then made)"
            )
        return self

    @property
    def listen_addr(self) -> tuple[str, int]:
        return host_port(self.listen, "listen")

    @property
    def submission_addr(self) -> tuple[str, int] | None:
        return host_port(self.submission_listen, "submission_listen") if self.submission_listen else None


class MailSection(_Section):
    relay: str = "127.0.0.1:25"
    from_address: str = "smsgw@sms.example.com"
    admin_address: str = "postmaster@example.com"
    relay_username: str | None = None
    relay_password: SecretStr | None = None
    relay_password_file: Path | None = Field(None, strict=False)
    # true: STARTTLS required and the certificate verified; "when-offered" (Postfix `may`): STARTTLS
    # where the relay offers it, the certificate not checked, plain text if the handshake fails
    # (never with a relay password to a relay off loopback: `gateway.relaylogin`); false: never.
    # With false as the default the bounces and answers, SMS texts in them, crossed the LAN in clear
    # to a relay that offered TLS.
    relay_starttls: bool | Literal["when-offered"] = WHEN_OFFERED
    # A company relay's certificate is usually self-signed or from an internal CA: without these the
    # only choices were no TLS or every outgoing mail deferred for five days.
    relay_tls_ca_file: Path | None = Field(None, strict=False)
    relay_tls_verify: bool = True
    # TLS from the connection on (SMTPS, port 465, RFC 8314), verified as relay_tls_verify says: such
    # a relay says nothing until the handshake, and each send waited 30 s for its greeting.
    relay_implicit_tls: bool = False
    # 125 tries: the back-off reaches an hour after 7, so about five days, as mail servers keep trying
    # (12 gave up after 7 hours: one night's relay outage failed every bounce queued meanwhile).
    max_attempts: int = Field(125, ge=1)

    @model_validator(mode="after")
    def _one_password(self) -> MailSection:
        if self.relay_password is not None and self.relay_password_file is not None:
            raise ValueError("give relay_password or relay_password_file, not both")
        # Half a login passed check-config and no login was ever made (the mailer logs in with both):
        # the relay refused the mail as "authentication required", or took it from an open relay.
        password = self.relay_password is not None or self.relay_password_file is not None
        if password and not self.relay_username:
            given = "relay_password" if self.relay_password is not None else "relay_password_file"
            raise ValueError(
                f"{given} is set without relay_username, and no login is made with a password alone:"
                f" give relay_username too, or remove {given}"
            )
        if self.relay_username and not password:
            raise ValueError(
                "relay_username is set without relay_password or relay_password_file, and no login is"
                " made with a name alone: give the password too, or remove relay_username"
            )
        return self

    @model_validator(mode="after")
    def _tls_settings(self) -> MailSection:
        # A TLS setting that changes nothing would let an admin believe the relay is reached over TLS.
        tls_set = self.relay_tls_ca_file is not None or not self.relay_tls_verify
        if tls_set and self.relay_starttls is not True and not self.relay_implicit_tls:
            raise ValueError(
                "relay_tls_ca_file and relay_tls_verify take effect only with relay_starttls = true"
                " or relay_implicit_tls = true"
            )
        if self.relay_implicit_tls and "relay_starttls" in self.model_fields_set:
            raise ValueError(
                "give relay_starttls or relay_implicit_tls = true, not both (implicit TLS starts at the"
                " connection: there is no STARTTLS)"
            )
        if self.relay_implicit_tls and self.relay.startswith(MAILDIR_PREFIX):
            raise ValueError('relay_implicit_tls is for a relay at HOST:PORT, not "maildir:"')
        if self.relay_tls_ca_file is not None and not self.relay_tls_verify:
            raise ValueError(
                "give relay_tls_ca_file or relay_tls_verify = false, not both (false checks nothing)"
            )
        return self

    def relay_password_path(self, base_dir: Path | None = None) -> Path | None:
        """Where `relay_password_file` is read: systemd's credentials directory first, else by the config."""
        return credential_path(self.relay_password_file, base_dir)

    def relay_secret(self, base_dir: Path | None = None) -> str | None:
        """The relay password from the config or its file; None when none is set."""
        if self.relay_password is not None:
            return self.relay_password.get_secret_value()
        path = self.relay_password_path(base_dir)
        if path is None:
            return None
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"[mail] relay_password_file: cannot read {path}: {exc.strerror}") from exc

    @field_validator("relay_starttls", mode="before")
    @classmethod
    def _starttls(cls, v: object) -> object:
        # The union's own errors named its two types ("bool: ...; literal[...]: ...").
        if isinstance(v, bool) or v == WHEN_OFFERED:
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            said = f"not the text {quoted(v)}"
            raise ValueError(f"give true or false without quotes (relay_starttls = true), {said}")
        shown = f"the text {quoted(v)}" if isinstance(v, str) else f"{v!r}"
        offered = quoted(WHEN_OFFERED)
        raise ValueError(f"give true, false or {offered} (relay_starttls = {offered}), not {shown}")

    @field_validator("relay")
    @classmethod
    def _relay(cls, v: str) -> str:
        if v.startswith(MAILDIR_PREFIX):
            if not v.removeprefix(MAILDIR_PREFIX).strip():
                raise ValueError('relay "maildir:" needs a directory, e.g. "maildir:var/mail"')
            return v
        host_port(v, "relay", "127.0.0.1:25", listener=False)
        return v

    @field_validator("from_address", "admin_address")
    @classmethod
    def _address(cls, v: str) -> str:
        return plain_address(v)

    @property
    def capture_dir(self) -> Path | None:
        """Where mail is written as .eml files instead of relayed (`relay = "maildir:DIR"`)."""
        if not self.relay.startswith(MAILDIR_PREFIX):
            return None
        return Path(self.relay.removeprefix(MAILDIR_PREFIX).strip())

    @property
    def relay_addr(self) -> tuple[str, int]:
        return host_port(self.relay, "relay")


class WebSection(_Section):
    """The admin panel and /metrics, served by the daemon on its own event loop."""

    enabled: bool = False
    listen: str = "127.0.0.1:8080"  # loopback: /metrics needs no login, like every exporter
    tls_cert_file: Path | None = Field(None, strict=False)
    tls_key_file: Path | None = Field(None, strict=False)
    # When set, /metrics wants `Authorization: Bearer <token>`.
    metrics_token: Annotated[str | None, SECRET] = None
    session_hours: float = Field(8, gt=0)
    # Reverse proxies whose X-Forwarded-For names the client (for the login lockout); none: the
    # connection's own address counts, as a header anyone on the machine can send must not.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Names the panel answers to besides IP addresses, localhost and the listen address's own
    # (gateway/web/hosts.py): a reverse proxy's or a TLS certificate's.
    hostnames: list[str] = Field(default_factory=list)

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _HOSTNAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a host name (give it without scheme or port: panel.example.com)"
                )
        return v

    @field_validator("listen")
    @classmethod
    def _addr(cls, v: str) -> str:
        host_port(v, "listen address")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for address in v:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address (a proxy's, e.g. 127.0.0.1)") from None
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> WebSection:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        return self

    @property
    def listen_addr(self) -> tuple[str, int]:
        return host_port(self.listen, "listen")
