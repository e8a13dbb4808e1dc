"""The config sections of the SMSC links (`[[smsc]]`) and the built-in simulator (`[simulator]`).

Each link section builds the driver's own settings type (`smsc.settings.LinkSettings`), so the
drivers never import the gateway's config; the password may come from a file or a systemd
credential.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import structlog
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from gateway.configbase import (
    SECRET,
    ConfigError,
    KeyProblem,
    _Section,
    credential_path,
    link_host,
    link_place,
)
from gateway.prefixform import prefix_problem, region_of
from gateway.smppsource import SourceNpi, SourceTon, warn_unused
from smsc.settings import LinkSettings, LinkTls

if TYPE_CHECKING:
    from smsc.base import SmscLink

log = structlog.get_logger(__name__)


TLS_KEYS = ("tls_ca_file", "tls_verify", "tls_server_name", "tls_cert_file", "tls_key_file")
SENDER_PREFIX = re.compile(r"\+?[0-9]{1,20}")  # as a number sender is written (`senderrules`)
E164_DIGITS = 15  # ITU-T E.164: a number's digits at most, country code included


class SmscSection(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    type: Literal["smpp", "cimd2"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    system_id: str = ""  # SMPP system_id / CIMD2 user identity
    password: SecretStr | None = None
    password_file: Path | None = Field(None, strict=False)
    system_type: str = ""
    prefixes: list[str] = Field(default_factory=list)  # "+48", "+4860"; empty = default route
    exclusive: bool = False  # its prefixes' numbers never leave by a default link (`gateway.routing`)
    window: int = Field(10, ge=1, le=1000)
    max_per_second: float = Field(100, gt=0, allow_inf_nan=False)
    enquire_link_seconds: float = Field(30, gt=0)  # SMPP enquire_link / CIMD2 alive on idle
    response_timeout_seconds: float = Field(30, gt=0)
    late_answer_grace_seconds: float = Field(300, ge=0)  # an unanswered submit waits this long to be re-sent
    lost_submit_settle_seconds: float = Field(30, ge=0)  # a lost submit's wait for its report
    reconnect_min_seconds: float = Field(1, gt=0)
    reconnect_max_seconds: float = Field(60, gt=0)
    throttle_pause_seconds: float = Field(1, ge=0)
    message_id_type: Literal["as_is", "hex_to_dec", "dec_to_hex"] = "as_is"
    source_ton: SourceTon = None  # override autodetection of number senders (SMPP, `gateway.smppsource`)
    source_npi: SourceNpi = None
    dc0_charset: Literal["gsm", "latin1"] = "gsm"  # what the SMSC reads SMPP data_coding 0 as
    validity_format: Literal["relative", "absolute"] = "relative"  # SMPP validity_period's form
    smsc_account: str = ""  # links naming the same one are binds of one SMSC account (its receipts)
    sender_prefix: str | None = None  # CIMD2: the interface's number, left off 023; "never": no 023
    status_reports: bool = True  # CIMD2: false sends no 056, for an account that refuses it (900:310)
    tls: bool = False  # connect over TLS (the tls_* keys below only with it)
    tls_ca_file: Path | None = Field(None, strict=False)  # PEM: the CA (or the SMSC's own certificate)
    tls_verify: bool = True  # the certificate and its name; false: anyone on the path can pose as the SMSC
    tls_server_name: str | None = Field(None, min_length=1)  # the name checked when host is an IP
    tls_cert_file: Path | None = Field(
        None, strict=False
    )  # client certificate, for binds authenticated by it
    tls_key_file: Path | None = Field(None, strict=False)

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v: list[str], info: ValidationInfo) -> list[str]:
        for p in v:
            if not p.startswith("+") or not (p[1:].isascii() and p[1:].isdigit()):  # +٤٨ matches no number
                raise ValueError(prefix_problem(p, region_of(info)))  # with the form to write, if any
            # Neither can match a number in E.164, as every number is read: taken, they routed nothing.
            if p[1] == "0":
                raise ValueError(f"prefix {p!r} can match no number: no country code starts with 0")
            if len(p) - 1 > E164_DIGITS:
                raise ValueError(f"prefix {p!r} can match no number: it is longer than {E164_DIGITS} digits")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return link_host(v)

    @field_validator("sender_prefix")
    @classmethod
    def _sender_prefix(cls, v: str | None) -> str | None:
        from smsc.cimd2.messages import NEVER, international_digits

        if v is None or v == NEVER:
            return v
        if not SENDER_PREFIX.fullmatch(v) or not international_digits(v):
            raise ValueError(
                f"{v!r} is neither the number of the SMSC interface, in digits with an optional leading"
                ' "+" (such as "+48500100"), nor "never"'
            )
        return v

    @model_validator(mode="after")
    def _cimd2_only(self) -> SmscSection:
        """The sub-address is CIMD2's (023): an SMPP source_addr is the whole number, and a prefix
        set there would silently do nothing."""
        if self.sender_prefix is not None and self.type != "cimd2":
            raise KeyProblem(
                "sender_prefix", 'only a type = "cimd2" link takes it (SMPP sends the whole number)'
            )
        if not self.status_reports and self.type != "cimd2":
            raise KeyProblem("status_reports", 'only a type = "cimd2" link takes it (SMPP always asks)')
        warn_unused(self.name, self.type, self.model_fields_set, self.source_ton, self.source_npi)
        if "validity_format" in self.model_fields_set and self.type != "smpp":
            # Left from the SMPP block a CIMD2 one was made of, it said a choice the link never made.
            raise KeyProblem(
                "validity_format",
                'only a type = "smpp" link takes it (CIMD2 always sends the time left, in 050): remove it',
            )
        return self

    @model_validator(mode="after")
    def _tls(self) -> SmscSection:
        """The tls_* keys that could not do what they say: the admin meant TLS, or a client certificate."""
        given = [key for key in TLS_KEYS if key in self.model_fields_set]
        if given and not self.tls:
            verb = "does" if len(given) == 1 else "do"
            raise KeyProblem(
                ", ".join(given), f"{verb} nothing while tls = false: set tls = true, or remove it"
            )
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise KeyProblem("tls_key_file", "is the key of a client certificate: give tls_cert_file too")
        if self.tls_ca_file is not None and not self.tls_verify:
            raise KeyProblem(
                "tls_ca_file, tls_verify",
                "tls_verify = false checks no certificate, so tls_ca_file pins nothing: remove tls_verify"
                " = false to pin the SMSC to tls_ca_file (its CA, or its own self-signed certificate)",
            )
        return self

    @model_validator(mode="after")
    def _exclusive(self) -> SmscSection:
        """An exclusive link without prefixes would keep nothing to itself: it is a default link, and
        the admin meant some numbers (a prefix left out, or the wrong link marked)."""
        if self.exclusive and not self.prefixes:
            raise KeyProblem(
                "exclusive",
                "needs the link's prefixes (it keeps their numbers to it); a link without prefixes"
                " is a default link: give prefixes or remove exclusive",
            )
        return self

    @model_validator(mode="after")
    def _secret(self) -> SmscSection:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        secret = self.password.get_secret_value() if self.password is not None else ""
        fields = [("system_id", self.system_id), ("password", secret)]
        if self.type == "smpp":
            fields.append(("system_type", self.system_type))
        for key, value in fields:
            if fault := self._login_fault(value):
                raise KeyProblem(key, fault)
        if self.type == "smpp":
            if len(self.system_id) > 15:
                warnings.warn(
                    f"{link_place(self.name, 'system_id')}: longer than 15 characters is cut by SMPP 3.4",
                    stacklevel=2,
                )
            if self.password is not None and len(self.password.get_secret_value()) > 8:
                warnings.warn(
                    f"{link_place(self.name, 'password')}: longer than 8 characters is cut by SMPP 3.4",
                    stacklevel=2,
                )
        return self

    def _login_fault(self, value: str) -> str | None:
        """Why the link's login could never be written with `value` in it, if it could not: the link
        would retry it for ever. The value itself is not repeated (a password)."""
        if self.type == "smpp":  # C-octet strings
            ok = value.isascii() and value.isprintable()
            return None if ok else "must be printable ASCII (SMPP sends it as is)"
        from smsc.cimd2.messages import LOGIN_RULE, login_params

        try:
            login_params(value, "")
        except ValueError:
            return f"must be {LOGIN_RULE} (CIMD2 sends it as is)"
        return None

    def tls_settings(self, base_dir: Path | None = None) -> LinkTls | None:
        """The link's TLS with its files resolved beside the config (None: in clear)."""
        if not self.tls:
            return None

        def where(path: Path | None) -> Path | None:
            return path if path is None or path.is_absolute() or base_dir is None else base_dir / path

        return LinkTls(
            ca_file=where(self.tls_ca_file), verify=self.tls_verify, server_name=self.tls_server_name,
            cert_file=where(self.tls_cert_file), key_file=where(self.tls_key_file),
        )  # fmt: skip

    def tls_problem(self, base_dir: Path | None = None) -> str | None:
        """Why the link's TLS files cannot be used as `run` reads them (missing, unreadable, not PEM, a
        key of another certificate), naming the key and the file; None when they can (or no TLS)."""
        tls = self.tls_settings(base_dir)
        if tls is None:
            return None
        from smsc.tls import TlsFileError, client_context

        try:
            client_context(tls)
        except TlsFileError as exc:
            return f"{link_place(self.name)} {exc}"
        return None

    def driver_settings(self, base_dir: Path | None = None) -> LinkSettings:
        """What the protocol driver reads; pacing values stay with the dispatcher."""
        return LinkSettings(
            name=self.name, host=self.host, port=self.port, system_id=self.system_id,
            system_type=self.system_type,
            window=self.window if "window" in self.model_fields_set else None,
            enquire_link_seconds=self.enquire_link_seconds,
            response_timeout_seconds=self.response_timeout_seconds,
            late_answer_grace_seconds=self.late_answer_grace_seconds,
            lost_submit_settle_seconds=self.lost_submit_settle_seconds,
            reconnect_min_seconds=self.reconnect_min_seconds,
            reconnect_max_seconds=self.reconnect_max_seconds,
            message_id_type=self.message_id_type, source_ton=self.source_ton, source_npi=self.source_npi,
            dc0_charset=self.dc0_charset, validity_format=self.validity_format,
            max_per_second=self.max_per_second,
            sender_prefix=self.sender_prefix, status_reports=self.status_reports,
            tls=self.tls_settings(base_dir),
        )  # fmt: skip

    def password_path(self, base_dir: Path | None = None) -> Path | None:
        """Where `password_file` is read: systemd's credentials directory first, else beside the config."""
        return credential_path(self.password_file, base_dir)

    def secret(self, base_dir: Path | None = None) -> str:
        """The link password, read from the file or the systemd credentials directory when asked."""
        if self.password is not None:
            return self.password.get_secret_value()
        path = self.password_path(base_dir)
        if path is None:
            return ""
        where = link_place(self.name, "password_file")
        try:
            secret = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: {path} is not UTF-8 text") from None
        if fault := self._login_fault(secret):
            raise ConfigError(f"{where}: the password in {path} {fault}")
        return secret

    def password_reader(self, base_dir: Path | None = None, last: str = "") -> Callable[[], str]:
        """`password_file` read at each bind, as the TLS files are at each connect: a corrected file
        is used at the next attempt, without a restart. ValueError in `secret`'s words (the setting
        and the file, never the password) when it cannot be used then.

        A file caught mid-rewrite (`echo pw > file`, an editor saving in place) is empty or gone for
        a moment: a bind with '' was refused, a failed login the SMSC counts, and the link then waited
        its longest pause. So a read that fails or gives '' after one that gave a password (`last`,
        the start's) gives that one again, said once (no secret) until a read gives one again."""
        kept, said = last, False

        def read() -> str:
            nonlocal kept, said
            try:
                secret = self.secret(base_dir)
            except ConfigError as exc:
                if not kept:  # no password to fall back on: the link says the file's fault
                    raise ValueError(str(exc)) from None
                secret, fault = "", str(exc)
            else:
                fault = f"{link_place(self.name, 'password_file')}: {self.password_path(base_dir)} is empty"
            if secret or not kept:
                kept, said = secret, False
                return secret
            if not said:
                log.warning("smsc.password_file_kept", link=self.name, error=fault,
                            note="the link binds with the password last read from it")  # fmt: skip
                said = True
            return kept

        return read

    def driver(self, base_dir: Path | None = None) -> SmscLink:
        """The link's driver (SMPP or CIMD2), with its settings and password (a file's read again at
        each bind)."""
        # Read now too: a file that cannot be used stops the start (and check-config).
        password: str | Callable[[], str] = self.secret(base_dir)
        if self.password_file is not None:
            password = self.password_reader(base_dir, last=password)
        if problem := self.tls_problem(base_dir):  # the link would fail each connect on it
            raise ConfigError(problem)
        settings = self.driver_settings(base_dir)
        if self.type == "smpp":
            from smsc.smpp.link import SmppLink

            return SmppLink(settings, password=password)
        from smsc.cimd2.link import Cimd2Link

        return Cimd2Link(settings, password=password)


LOOPBACK = ("localhost", "localhost.localdomain", "ip6-localhost", "::1")


def _host_key(host: str) -> str:
    """The host as one SMSC: case, a final dot and the loopback's names do not make another."""
    host = host.strip().lower().rstrip(".").strip("[]")
    return "loopback" if host in LOOPBACK or host.startswith("127.") else host


def bind_key(kind: str, host: str, port: int, system_id: str) -> tuple[str, str, str, str]:
    """One SMSC account's bind: protocol, host, port and login (`receipt_siblings`, and a link
    renamed, `gateway.linkbinds`)."""
    return (kind, _host_key(host), str(port), system_id)


def receipt_siblings(links: Sequence[SmscSection]) -> dict[str, tuple[str, ...]]:
    """For each link, the other links bound to the same SMSC account: more binds are how one gets
    more throughput from an operator, and its SMSC sends a receipt on any bind of the account, not
    only the one the SMS went by. Matched only on the link it arrived on, such a receipt was kept
    unmatched, and a failed SMS was never reported to its sender. The SMSC's ids are its own,
    unique across its binds.

    Links with the same type, host, port and login are binds of one account; so are links that
    name the same `smsc_account` (Kannel's `smsc-admin-id`), for an operator whose binds go to
    several hosts or ports."""
    parent = {link.name: link.name for link in links}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    first: dict[tuple[str, ...], str] = {}
    for link in links:
        keys: list[tuple[str, ...]] = [bind_key(link.type, link.host, link.port, link.system_id)]
        if link.smsc_account:
            keys.append(("smsc_account", link.smsc_account))
        for key in keys:
            other = first.setdefault(key, link.name)
            parent[root(link.name)] = root(other)
    groups: dict[str, list[str]] = {}
    for link in links:
        groups.setdefault(root(link.name), []).append(link.name)
    return {
        name: tuple(other for other in names if other != name)
        for names in groups.values()
        if len(names) > 1
        for name in names
    }


class SimulatorSection(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    smpp_port: int = Field(2775, ge=0, le=65535)
    cimd2_port: int = Field(9971, ge=0, le=65535)
    control_port: int = Field(2776, ge=0, le=65535)  # `smsgw simulator ...` talks to it
    log: Path = Field(Path("var/simulator.jsonl"), strict=False)
    system_id: str = "smsgw"
    password: Annotated[str, SECRET] = "secret"
    fail_suffixes: list[str] = Field(default_factory=lambda: ["13"])  # numbers ending so: DLR failed
    reject_suffixes: list[str] = Field(default_factory=lambda: ["0000"])  # refused at submit
    dlr_delay_seconds: float = Field(0.2, ge=0)
    # Error injection (smsc/simulator/limits.py), off at 0: an SMSC that throttles, has a window, is slow.
    max_submits_per_second: int = Field(0, ge=0)  # per login; beyond: 0x58 ESME_RTHROTTLED / CIMD2 900:10
    max_unanswered_submits: int = Field(0, ge=0)  # per session; beyond: 0x14 ESME_RMSGQFUL / CIMD2 900:10
    response_delay_seconds: float = Field(0.0, ge=0, le=60)  # before each submit is answered
    # TLS on the SMPP and CIMD2 ports (the control port stays in clear, for the CLI on this machine).
    tls_cert_file: Path | None = Field(None, strict=False)
    tls_key_file: Path | None = Field(None, strict=False)
    tls_client_ca_file: Path | None = Field(None, strict=False)  # then a client certificate is required

    @model_validator(mode="after")
    def _tls(self) -> SimulatorSection:
        """Half a TLS setup would leave the ports in clear while the admin meant them not to be."""
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise KeyProblem("tls_client_ca_file", "needs tls_cert_file and tls_key_file (TLS on the ports)")
        return self
