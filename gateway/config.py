"""The configuration file: its schema, its loading and its validation.

Every section rejects unknown keys (`extra="forbid"`) so that a typo stops the start with the key
named, instead of silently falling back to a default. Secrets may live in files (`password_file`,
or a name under systemd's `$CREDENTIALS_DIRECTORY`) so that `config.toml` itself can be readable.
"""

from __future__ import annotations

import codecs
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
from gateway.adminrules import account_name_problem, end_marker_problem, sender_problem
from gateway.configbase import ConfigError, _Section, is_hostname, joined, plain_address, quoted
from gateway.configerrors import describe
from gateway.configfeatures import PremiumSection, RepliesSection
from gateway.configlinks import SimulatorSection, SmscSection
from gateway.configservices import MailSection, SmtpSection, WebSection
from gateway.wording import Language

# A month: a part still undelivered after it is stale for any sender, and SMSCs usually keep one
# for days. The protocols allow more (CIMD2's relative validity, GSM 03.40's code table, reaches 63
# weeks; SMPP's time format, years), so the bound is ours. It also keeps every expiry a date the
# drivers can write: 1e9 hours overflowed datetime and put every SMS on hold.
MAX_VALIDITY_HOURS = 720
MAX_PARTS = 10
# The kinds of number (gateway.smtp.addressing.number_kind) served by default: phones, mobile or
# not. Premium-rate, shared-cost, toll-free, UAN and voicemail numbers, and satellite phones and
# international networks (GLOBAL: +870, +881, +882, +883), cost many times a mobile's SMS or reach
# nobody; mail to +48 701… or +870… was sent like any other.
SERVED_NUMBER_TYPES = ("MOBILE", "FIXED_LINE_OR_MOBILE", "FIXED_LINE", "VOIP", "PAGER", "PERSONAL_NUMBER")


class GatewaySection(_Section):
    domains: list[str] = Field(default_factory=lambda: ["sms.example.com"], min_length=1)
    default_region: str = "PL"
    number_types: list[str] = Field(default_factory=lambda: list(SERVED_NUMBER_TYPES), min_length=1)
    state_dir: Path = Field(Path("var"), strict=False)
    billing_dir: Path | None = Field(
        None, strict=False
    )  # R-5.1's configured directory; unset: <state_dir>/billing
    hostname: str = "sms.example.com"  # our name in SMTP banners and Message-IDs
    subject_max: int = Field(30, ge=0, le=160)
    subject_separator: str = ": "
    end_marker: str = "END"
    charset_fallbacks: list[str] = Field(default_factory=lambda: ["utf-8", "windows-1250", "iso-8859-2"])
    # a message is at most 10 parts. Up to 255 was taken before 0.2.4: such a config still
    # starts (a refusal would leave the service down after an upgrade), `parts_cap` is what is used,
    # and check-config and run say so (`gateway.configdoubts`).
    max_parts: int = Field(10, ge=1, le=255)
    validity_hours: float = Field(24, gt=0, allow_inf_nan=False)  # at most MAX_VALIDITY_HOURS
    queue_high_water: int = Field(200_000, ge=1)  # parts waiting; shared out, see gateway.queuedepth
    retry_base_seconds: float = Field(5.0, gt=0)  # first retry after a temporary SMSC fault; doubles
    timezone: str = "Europe/Warsaw"
    language: Language = "en"  # of the mails people read (gateway.wording); "pl" for a Polish office
    default_sender: str = "+48100200300"  # originating address for accounts without their own
    # Not "NIE": it is Polish for "no", the commonest answer to a question sent by SMS, and an
    # opt-out is for every account. Matched without case or diacritics (REZYGNUJĘ = REZYGNUJE).
    optout_words: list[str] = Field(default_factory=lambda: ["STOP", "REZYGNUJE"])
    # A phone that answered an opt-out word itself takes it back with one of these (matched the same
    # way); a number an admin put on the list stays there.
    optin_words: list[str] = Field(default_factory=lambda: ["START"])
    identical_per_day: int = Field(3, ge=1)  # more identical SMS to one number in a day are refused
    suspend_after: int = Field(500, ge=1)  # failed-delivery share is judged over this many messages
    suspend_failed_share: float = Field(0.10, gt=0, le=1)
    # A short retention (privacy) is fine: the purge never deletes a month not billed yet.
    retention_days: float = Field(90, gt=0, allow_inf_nan=False)
    early_dlr_max_age_minutes: float = Field(10, gt=0)  # a receipt older than this never matches a new part

    @property
    def parts_cap(self) -> int:
        """The most parts one message may become: `max_parts`, within R-1.4's 10."""
        return min(self.max_parts, MAX_PARTS)

    @field_validator("domains")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        domains = [d.lower().strip() for d in v]
        for d in domains:
            if not is_hostname(d):
                raise ValueError(f'{d!r} is not a domain name (use a name such as "sms.example.com")')
        return domains

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, v: str) -> str:
        # It goes into SMTP banners, Message-IDs and the self-signed certificate's name.
        if not is_hostname(v):
            raise ValueError(f'{v!r} is not a host name (use a name such as "sms.example.com")')
        return v

    @field_validator("billing_dir", mode="before")
    @classmethod
    def _billing_dir(cls, v: object) -> object:
        # Read as a Path, "" is "." (the config's own directory): the months would land among the
        # config files, unasked. Leaving the key out is how the default is said.
        if isinstance(v, str) and not v.strip():
            raise ValueError(
                'give a directory (e.g. billing_dir = "/srv/smsgw/billing"), or leave the key out'
            )
        return v

    @field_validator("end_marker")
    @classmethod
    def _end_marker(cls, v: str) -> str:
        # The CLI's and the panel's rule: "A\nB" passed and never matched a line of any mail.
        problem = end_marker_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("validity_hours")
    @classmethod
    def _validity(cls, v: float) -> float:
        if v > MAX_VALIDITY_HOURS:
            raise ValueError(
                f"must be at most {MAX_VALIDITY_HOURS} hours (30 days; an SMS not sent within a month is"
                f" stale, and SMSCs usually keep it for days), got {v:g}"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone {v!r} (use an IANA name such as "Europe/Warsaw")') from None
        return v

    @field_validator("charset_fallbacks")
    @classmethod
    def _codecs(cls, v: list[str]) -> list[str]:
        for name in v:
            try:
                codecs.lookup(name)
            except LookupError:
                raise ValueError(
                    f'unknown character set {name!r} (use codec names such as "utf-8", "windows-1250")'
                ) from None
        return v

    @field_validator("default_sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if not v.strip():
            raise ValueError('give the number or name SMS are sent from, such as "+48100200300"')
        return _sendable(v)

    @field_validator("number_types")
    @classmethod
    def _number_types(cls, v: list[str]) -> list[str]:
        from gateway.smtp.addressing import NUMBER_KINDS

        kinds = [k.strip().upper() for k in v]
        for kind in kinds:
            if kind not in NUMBER_KINDS:
                raise ValueError(f"unknown number type {kind!r} (one of {', '.join(NUMBER_KINDS)})")
        return list(dict.fromkeys(kinds))

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        import phonenumbers

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {v!r} (use an ISO 3166 code such as PL)")
        return v.upper()


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
        name = v.strip()
        problem = account_name_problem(name)
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
        # internet send SMS as the account's users, with only a warning from check-config.
        for cidr in v:
            try:
                relaynets.network(cidr)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("users")
    @classmethod
    def _users(cls, v: list[str]) -> list[str]:
        # What `user add` and the panel refuse (a wildcard, an IP-address domain, a BATV tag) was
        # seeded from here as a user that no envelope sender ever matches, or one a day at most.
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

    @model_validator(mode="after")
    def _links(self, info: ValidationInfo) -> Config:
        names = [s.name for s in self.smsc]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            repeated = ", ".join(quoted(n) for n in sorted(dupes))
            raise ValueError(f"[[smsc]] name: each link needs a name of its own, repeated: {repeated}")
        if not self.smsc and (info.context or {}).get("links_required", True):
            raise ValueError("[[smsc]]: at least one link is needed (the shipped config uses the simulator)")
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

    def routes(self) -> list[tuple[str, list[str]]]:
        """(link, its prefixes) in configuration order, as `gateway.routing` takes them."""
        return [(link.name, link.prefixes) for link in self.smsc]

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


def _sendable(sender: str) -> str:
    """The CLI's and the panel's rule (adminrules): every SMS from a sender an SMSC cannot send
    fails at submit, and those failures suspend the account."""
    problem = sender_problem(sender)
    if problem is not None:
        raise ValueError(problem)
    return sender


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


def parse_config(
    text: str, *, source: str = "config", base_dir: Path = Path("."), links_required: bool = True
) -> Config:
    """`links_required=False` is for commands that never open a link (the simulator on its own)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = Config.model_validate(
                {**data, "base_dir": base_dir}, context={"links_required": links_required}
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
    try:
        # utf-8-sig: Windows editors (Notepad) save UTF-8 with a byte order mark, which TOML refuses.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(path, raw, exc)) from None
    return parse_config(text, source=str(path), base_dir=path.resolve().parent, links_required=links_required)


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
