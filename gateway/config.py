"""The configuration file: its schema, its loading and its validation.

Every section rejects unknown keys (`extra="forbid"`) so that a typo stops the start with the key
named, instead of silently falling back to a default. Secrets may live in files (`password_file`,
or a name under systemd's `$CREDENTIALS_DIRECTORY`) so that `config.toml` itself can be readable.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sys
import tomllib
import warnings
from pathlib import Path

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from acl.accounts import user_address_problem
from gateway import relaynets
from gateway.adminrules import account_name_problem
from gateway.configbase import ConfigError, _Section, joined, plain_address, quoted
from gateway.configerrors import describe
from gateway.configfeatures import PremiumSection, RepliesSection
from gateway.configgateway import GatewaySection, _sendable, premium_sender_refusal
from gateway.configlinks import SimulatorSection, SmscSection
from gateway.configservices import MailSection, SmtpSection, WebSection
from gateway.smscaccount import account_refusal
from gateway.tomlerrors import toml_error


class SeedAccount(_Section):
    """An account created at start when missing, so that a fresh install can send at once.

    Only creation is automatic: once the account exists, the admin CLI owns it and a changed
    seed does not overwrite what an admin set.
    """

    name: str
    relay_networks: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    sender: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # Trimmed as the CLI and the panel trim it: "demo " would seed a second, look-alike account.
        # A character that does not print was taken before the CLI refused it: a block naming a
        # stored account so must not stop the start, and the start makes no new account so
        # (`gateway.accountseed`).
        name = v.strip()
        problem = account_name_problem(name, unseen_too=False)
        if problem is not None:
            raise ValueError(problem)
        return name

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str | None) -> str | None:
        # The error's place names the account (`[[account]] "demo" sender: ...`).
        if v is None:
            return None
        if not v.strip():
            raise ValueError("an empty sender: leave sender out to use [gateway] default_sender")
        return _sendable(v)

    @field_validator("relay_networks")
    @classmethod
    def _nets(cls, v: list[str]) -> list[str]:
        # The CLI's and the panel's reading: `198.51.100.7/0` read as 0.0.0.0/0 let anyone on the
        # internet send SMS as the account's users, with only a warning from check-config. An
        # IPv4-compatible one was taken before: refused for a new account only (`gateway.accountseed`).
        for cidr in v:
            if relaynets.ipv4_compatible(cidr):
                continue
            try:
                relaynets.network(cidr)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("users")
    @classmethod
    def _users(cls, v: list[str]) -> list[str]:
        # What `user add` and the panel refuse (a wildcard, an IP-address domain, a BATV tag) was
        # seeded from here as a user that no envelope sender ever matches, or one a day at most. A
        # one-label domain (`ops@ACME`), which `user add` refuses, was taken before: the start makes
        # no new account with one (`gateway.accountseed`), and a stored account keeps its users.
        users = [plain_address(u) for u in v]
        for user in users:
            if (problem := user_address_problem(user)) is not None:
                raise ValueError(problem)
        return users


class Config(_Section):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    smtp: SmtpSection = Field(default_factory=SmtpSection)
    mail: MailSection = Field(default_factory=MailSection)
    smsc: list[SmscSection] = Field(default_factory=list)
    simulator: SimulatorSection = Field(default_factory=SimulatorSection)
    replies: RepliesSection = Field(default_factory=RepliesSection)
    premium: PremiumSection = Field(default_factory=PremiumSection)
    web: WebSection = Field(default_factory=WebSection)
    account: list[SeedAccount] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), exclude=True)
    # The loaded file's bytes, hashed: the daemon puts it in its status file, and `smsgw status` says
    # when the file was edited since (it read the edited file's links as the running ones).
    digest: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _links(self, info: ValidationInfo) -> Config:
        names = [s.name for s in self.smsc]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            repeated = ", ".join(quoted(n) for n in sorted(dupes))
            raise ValueError(f"[[smsc]] name: each link needs a name of its own, repeated: {repeated}")
        if (problem := account_refusal(self.smsc)) is not None:
            raise ValueError(problem)
        if not self.smsc and (info.context or {}).get("links_required", True):
            raise ValueError("[[smsc]]: at least one link is needed (the shipped config uses the simulator)")
        return self

    @model_validator(mode="after")
    def _source_keys(self) -> Config:
        from gateway.smppsource import warn_overridden

        senders = [self.gateway.default_sender, *(a.sender for a in self.account if a.sender)]
        warn_overridden(
            self.smsc, [*senders, *self.premium.numbers, *(n.number for n in self.premium.number)]
        )
        return self

    @model_validator(mode="after")
    def _distinct_accounts(self) -> Config:
        """Two seeds of one account (names are compared trimmed) would merge into it unnoticed."""
        names = [a.name for a in self.account]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            repeated = ", ".join(map(quoted, dupes))
            raise ValueError(f"[[account]] name: each account needs a name of its own, repeated: {repeated}")
        return self

    @model_validator(mode="after")
    def _distinct_listeners(self) -> Config:
        """Two listeners on one port pass every section's check and then stop `run` (exit 1, and
        systemd restarts it for ever): say which two, before anything listens."""
        seen: list[tuple[str, str, int]] = []
        for key, host, port in self.listeners():
            if port == 0:  # a free port picked at start never collides
                continue
            for other, other_host, other_port in seen:
                if port == other_port and _same_address(host, other_host):
                    raise ValueError(
                        f"{key} ({_where(host, port)}) and {other} ({_where(other_host, other_port)})"
                        f" listen on the same port {port}: give each its own port"
                    )
            seen.append((key, host, port))
        return self

    @model_validator(mode="after")
    def _premium_senders(self) -> Config:
        """No sender may be a premium number (`gateway.configgateway.premium_sender_refusal`)."""
        if (problem := premium_sender_refusal(self)) is not None:
            raise ValueError(problem)
        return self

    def routes(self) -> list[tuple[str, list[str], bool]]:
        """(link, its prefixes, exclusive) in configuration order, as `gateway.routing` takes them."""
        return [(link.name, link.prefixes, link.exclusive) for link in self.smsc]

    @property
    def dc0_latin1(self) -> bool:
        """Some SMPP link reads data_coding 0 as Latin-1: every SMS is planned so that it can go by it
        (`smsc.encoding.plan(latin1=True)`), as a failover may send it there."""
        return any(link.type == "smpp" and link.dc0_charset == "latin1" for link in self.smsc)

    def listeners(self) -> list[tuple[str, str, int]]:
        """Every (setting as messages name it, host, port) the daemon listens on with this config, in
        the order it binds."""
        out = [("[smtp] listen", *self.smtp.listen_addr)]
        if self.smtp.submission_addr is not None:
            out.append(("[smtp] submission_listen", *self.smtp.submission_addr))
        if self.simulator.enabled:
            sim = self.simulator
            out += [
                ("[simulator] smpp_port", sim.host, sim.smpp_port),
                ("[simulator] control_port", sim.host, sim.control_port),
                ("[simulator] cimd2_port", sim.host, sim.cimd2_port),
            ]
        if self.web.enabled:
            out.append(("[web] listen", *self.web.listen_addr))
        return out

    def path(self, p: Path) -> Path:
        """Resolve a configured path relative to the config file's directory."""
        return p if p.is_absolute() else self.base_dir / p

    @property
    def state_dir(self) -> Path:
        return self.path(self.gateway.state_dir)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "smsgw.db"

    @property
    def billing_dir(self) -> Path:
        """Where the monthly billing files are kept (`YYYY-MM/<account>.txt`, R-5.1): every reader
        and writer of them asks here, so that `[gateway] billing_dir` moves them all at once."""
        configured = self.gateway.billing_dir
        return self.state_dir / "billing" if configured is None else self.path(configured)

    @property
    def premium_fallback(self) -> str:
        """Where MOs to a premium number with no (or a wrong) password go: [premium], else [replies],
        else the operator's [mail] admin_address. R-4.4 mails them to the operator: the phone paid,
        and with neither fallback set they were recorded and mailed to nobody, check-config silent."""
        return self.premium.fallback_address or self.replies.fallback_address or self.mail.admin_address


def _where(host: str, port: int) -> str:
    where = joined(host, port)
    return f"{where}, every address" if host in ("0.0.0.0", "::") else where


def _same_address(a: str, b: str) -> bool:
    """Whether two listeners on one port would collide: a wildcard address (0.0.0.0, ::) takes the
    port on every address (the panel's socket is dual-stack), else the addresses must be equal."""
    try:
        ip_a, ip_b = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:  # a host name: equal names collide; what they resolve to is not known here
        if a in ("0.0.0.0", "::") or b in ("0.0.0.0", "::"):  # a name beside a wildcard
            return True
        return a.lower().rstrip(".") == b.lower().rstrip(".")
    return ip_a.is_unspecified or ip_b.is_unspecified or ip_a == ip_b


def _region(data: dict[str, object]) -> object:
    """`[gateway] default_region` as written, for the sections' words on numbers written nationally
    (`gateway.prefixform`); checked by its own section."""
    gateway = data.get("gateway")
    return gateway.get("default_region", "PL") if isinstance(gateway, dict) else "PL"


def parse_config(
    text: str,
    *,
    source: str = "config",
    base_dir: Path = Path("."),
    links_required: bool = True,
    digest: str = "",
) -> Config:
    """`links_required=False` is for commands that never open a link (the simulator on its own)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {toml_error(text, exc)}") from exc
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = Config.model_validate(
                {**data, "base_dir": base_dir, "digest": digest},
                context={"links_required": links_required, "region": _region(data)},
            )
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc, Config, data)}") from exc
    for w in caught:  # worth knowing, not worth refusing: one line each, no traceback noise
        print(f"smsgw: warning: {source}: {w.message}", file=sys.stderr)
    return config


def load_config(path: Path, *, links_required: bool = True) -> Config:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    if (binary := _not_text(path, raw)) is not None:
        raise ConfigError(binary)
    try:
        # utf-8-sig: Windows editors (Notepad) save UTF-8 with a byte order mark, which TOML refuses.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(path, raw, exc)) from None
    return parse_config(
        text,
        source=str(path),
        base_dir=path.resolve().parent,
        links_required=links_required,
        digest=config_digest(raw),
    )


def config_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def _not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 is: a comment saved in cp1250 or ISO-8859-2 (Polish
    letters) is the usual cause, and TOML files are UTF-8 by definition."""
    line = raw.count(b"\n", 0, exc.start) + 1
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    # In characters, as an editor counts: what comes before the bad byte on its line decodes.
    column = len(raw[line_start : exc.start].decode("utf-8-sig" if line_start == 0 else "utf-8")) + 1
    return (
        f"{path} is not UTF-8: byte 0x{raw[exc.start]:02x} at line {line}, column {column};"
        f" save it as UTF-8 (from Windows-1250: iconv -f cp1250 -t utf-8 {path} > {path}.utf8)"
    )


def _not_text(path: Path, raw: bytes) -> str | None:
    """What `path` is when it is no text at all, or None. `--config var/smsgw.db` (the database given
    for the config) was told to convert it from Windows-1250 with iconv; an SQLite file of ASCII bytes
    only decodes, and TOML then spoke of an invalid character. No text file holds a NUL byte but a
    UTF-16 one (Notepad's "Unicode"), which is text to save again as UTF-8."""
    if raw.startswith(b"SQLite format 3\0"):
        return f"{path} is an SQLite database, not a config file (--config names the config.toml)"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return (
            f"{path} is UTF-16, not UTF-8: save it as UTF-8 (iconv -f utf-16 -t utf-8 {path} > {path}.utf8)"
        )
    if b"\0" in raw:
        return f"{path} holds NUL bytes: a binary file, not a config file (--config names the config.toml)"
    return None
