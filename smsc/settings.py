"""The settings the protocol drivers and the simulator read, as types of their own.

The gateway's configuration file is validated by its pydantic model (`gateway.config`), which builds
these; the drivers never see that model, so that `smsc/` stands alone and can be driven by a test, a
benchmark or another front end with nothing but these values. Pacing (window enforcement,
`max_per_second`, throttle pauses) is the dispatcher's `smsc.pacing.LinkPacer`; `max_per_second` is
here too only for the submits a driver holds after that pacing (`smsc.cimd2.spacing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

MessageIdType = Literal["as_is", "hex_to_dec", "dec_to_hex"]
Dc0Charset = Literal["gsm", "latin1"]
ValidityFormat = Literal["relative", "absolute"]
# A sender of this many digits or fewer, no '+', is a short code (a premium number such as 7155): the
# SMPP source address (`smsc.smpp.pdu.source_address`) and the form an account's sender is stored in
# (`gateway.senderform`) count alike.
SHORT_CODE_DIGITS = 8
# The SMPP types of number a short code can be (unknown, network specific, abbreviated).
SHORT_CODE_TONS = (0, 3, 6)


@dataclass(frozen=True, slots=True)
class LinkTls:
    """TLS on a link (`smsc.tls.client_context` builds it): paths already resolved by the caller."""

    ca_file: Path | None = None  # PEM; None: the system's trust store
    verify: bool = True  # the certificate and its name; False only for a peer nothing can verify
    server_name: str | None = None  # the name checked (and sent as SNI) when `host` is an IP
    cert_file: Path | None = None  # client certificate, for an SMSC that authenticates binds by it
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """One link to one SMSC, as a driver needs it; the password travels apart, never logged."""

    name: str
    port: int
    host: str = "127.0.0.1"
    system_id: str = ""  # SMPP system_id / CIMD2 user identity
    system_type: str = ""
    # Outstanding submits the SMSC allows; None = the protocol's default (SMPP 10, CIMD2 stop-and-wait).
    window: int | None = None
    enquire_link_seconds: float = 30.0  # SMPP enquire_link / CIMD2 alive on an idle link
    response_timeout_seconds: float = 30.0
    # How long an unanswered submit still takes a late answer before it may be sent again; 0 = no wait.
    late_answer_grace_seconds: float = 300.0
    # CIMD2: how long a submit lost with a dropped session waits after the next login for the SMSC's
    # report of it before it goes again (`cimd2.gracereports`); 0 = at the login, a possible duplicate.
    lost_submit_settle_seconds: float = 30.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    message_id_type: MessageIdType = "as_is"
    source_ton: int | None = None  # override autodetection (SMPP)
    source_npi: int | None = None
    # What the SMSC reads SMPP data_coding 0 as: SMPP 3.4 leaves it to the SMSC ("default alphabet"),
    # and some read Latin-1, where GSM's "@" (0x00) is a NUL. Kannel's alt-charset.
    dc0_charset: Dc0Charset = "gsm"
    # How SMPP's validity_period is written: relative (the time left, counted by the SMSC from the
    # submit, whatever its clock or zone) or absolute UTC (Kannel's way, for an SMSC taking no other).
    validity_format: ValidityFormat = "relative"
    # The contract's rate, for a driver that holds submits after the dispatcher's pacing (CIMD2's
    # submits waiting for their phone's second): they are paced again as they reach the wire.
    max_per_second: float | None = None
    # CIMD2's 023 is a sub-address the SMSC appends to the interface's own number: a numeric sender
    # under this prefix goes without it, "never" sends no 023 (Kannel's sender-prefix). None: whole.
    sender_prefix: str | None = None
    # CIMD2: False sends no status report request (056), for an SMSC account that refuses one (900:310,
    # Kannel's no-dlr): its SMS end `unreported`, as those of an SMSC that sends no reports.
    status_reports: bool = True
    tls: LinkTls | None = None  # None: the link connects in clear


class SimulatorSettings(Protocol):
    """What the simulator reads; any object with these attributes will do (the config model does)."""

    @property
    def host(self) -> str: ...
    @property
    def smpp_port(self) -> int: ...
    @property
    def cimd2_port(self) -> int: ...
    @property
    def control_port(self) -> int: ...
    @property
    def system_id(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def fail_suffixes(self) -> Sequence[str]: ...
    @property
    def reject_suffixes(self) -> Sequence[str]: ...
    @property
    def dlr_delay_seconds(self) -> float: ...


def password_key(password: str | Callable[[], str]) -> str:
    """The config key a link's password came from: a reader is `password_file`'s, read again at each
    bind (a corrected file is used at the next attempt), a text is `password` itself."""
    return "password_file" if callable(password) else "password"
