"""Nokia CIMD2 on the wire, with no network in sight: STX/ETX framing, the `ZZ:NNN` header, `PPP:value`
parameters, the checksum, the operation and parameter tables, and an incremental parser that
resynchronises on garbage and never raises. Parameter values are `str` holding one character per wire
byte (ISO-8859-1), so that any byte the SMSC sends survives untouched until a decoder that knows the
parameter's type looks at it. The CIMD character set for user data (033) is `smsc.cimd2.charset`,
re-exported here; what the error and status codes in the values mean is `smsc.cimd2.codes`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

import structlog

from smsc.cimd2.charset import (  # noqa: F401  # re-exported: the link, simulator and tests import them here
    GSM_BASIC,
    GSM_EXTENSION,
    cimd_decode,
    cimd_encode,
    septets_to_cimd,
    text_to_septets,
)
from smsc.logthrottle import LogThrottle
from smsc.numbermask import masked, without_numbers
from smsc.tls import printable_head

log = structlog.get_logger(__name__)

STX, ETX = 0x02, 0x03
# Bytes without an ETX before the parser gives up on a frame (jcimd's limit). A longer packet is dropped
# however TCP split it: taken whole when it came in one read, it was dropped when split before its ETX.
MAX_PACKET = 4096
HEAD_KEPT = 64  # first bytes of a session kept to say what a peer that is no CIMD2 SMSC sent
FORBIDDEN = "\x00\x02\x03\t"  # may never appear inside a parameter value


class PType(enum.Enum):
    INT = "integer"
    ADDRESS = "address"
    STRING = "string"
    HEX = "hex"
    USERDATA = "user data"
    TIME = "time"


OPERATIONS: dict[int, str] = {
    1: "LOGIN", 2: "LOGOUT", 3: "SUBMIT", 4: "ENQUIRE", 5: "DELIVERY_REQUEST", 6: "CANCEL", 8: "SET",
    9: "GET", 20: "DELIVER", 23: "STATUS_REPORT", 40: "ALIVE", 51: "LOGIN_RESP", 52: "LOGOUT_RESP",
    53: "SUBMIT_RESP", 54: "ENQUIRE_RESP", 55: "DELIVERY_REQUEST_RESP", 56: "CANCEL_RESP", 58: "SET_RESP",
    59: "GET_RESP", 70: "DELIVER_RESP", 73: "STATUS_REPORT_RESP", 90: "ALIVE_RESP", 98: "GENERAL_ERROR",
    99: "NACK",
}  # fmt: skip
# A response is always the request code + 50; 98 and 99 answer any packet.
Op = enum.IntEnum("Op", {name: code for code, name in OPERATIONS.items()})

_I, _A, _S, _H, _U, _T = PType.INT, PType.ADDRESS, PType.STRING, PType.HEX, PType.USERDATA, PType.TIME
# (code, name, type, max length on the wire) from protocols.md 1.5; unknown codes pass unchecked.
_PARAM_TABLE = (
    (10, "USER_IDENTITY", _S, 32), (11, "PASSWORD", _S, 32), (12, "SUBADDRESS", _I, 3),
    (19, "WINDOW_SIZE", _I, 3), (21, "DESTINATION", _A, 20), (23, "ORIGINATOR", _A, 20),
    (26, "ORIGINATING_IMSI", _A, 20), (27, "ALPHA_ORIGINATOR", _S, 11), (28, "VISITED_MSC", _A, 20),
    (30, "DCS", _I, 3), (32, "UDH", _H, 280), (33, "USER_DATA", _U, 480), (34, "USER_DATA_BINARY", _H, 280),
    (44, "MORE_MESSAGES", _I, 1), (50, "VALIDITY_RELATIVE", _I, 3), (51, "VALIDITY_ABSOLUTE", _T, 12),
    (52, "PID", _I, 3), (53, "FIRST_DELIVERY_RELATIVE", _I, 3), (54, "FIRST_DELIVERY_ABSOLUTE", _T, 12),
    (55, "REPLY_PATH", _I, 1), (56, "STATUS_REPORT_REQUEST", _I, 2), (58, "CANCEL_ENABLED", _I, 1),
    (59, "CANCEL_MODE", _I, 1), (60, "SCTS", _T, 12), (61, "STATUS_CODE", _I, 1),
    (62, "STATUS_ERROR_CODE", _I, 3), (63, "DISCHARGE_TIME", _T, 12), (64, "TARIFF_CLASS", _I, 2),
    (65, "SERVICE_DESCRIPTION", _I, 1), (66, "MESSAGE_COUNT", _I, 3), (67, "PRIORITY", _I, 1),
    (68, "DELIVERY_REQUEST_MODE", _I, 1), (69, "SERVICE_CENTER_ADDRESS", _A, 20),
    (500, "GET_PARAMETER", _I, 3), (501, "MC_TIME", _T, 12), (900, "ERROR_CODE", _I, 3),
    (901, "ERROR_TEXT", _S, 64),
)  # fmt: skip
P = enum.IntEnum("P", {name: code for code, name, _, _ in _PARAM_TABLE})
PARAMS: dict[int, tuple[PType, int]] = {code: (ptype, size) for code, _, ptype, size in _PARAM_TABLE}
_TYPE_RE = {
    _I: re.compile(r"-?\d+"),
    _A: re.compile(r"[0-9+\-]*"),
    _H: re.compile(r"(?:[0-9A-Fa-f]{2})*"),
    _T: re.compile(r"\d{12}"),
}

_TEXT_PARAMS = frozenset({P.USER_DATA, P.USER_DATA_BINARY})  # what the phone user wrote
# Phone numbers (and the sender's name) of a packet: a log keeps none, as it keeps no SMS text, so
# that `smsgw phone forget` leaves no number behind in the journal of bad or unexpected packets.
_PERSONAL_PARAMS = frozenset(code for code, (kind, _) in PARAMS.items() if kind is _A) | {P.ALPHA_ORIGINATOR}


@dataclass(slots=True)
class Packet:
    """One CIMD2 packet. `checksum_ok` is None when the peer sent no checksum; `errors` lists what
    the parser found wrong but could live with (bad parameter syntax, over-long values)."""

    op: int
    number: int
    params: list[tuple[int, str]] = field(default_factory=list)
    checksum_ok: bool | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, op: int, number: int, *params: tuple[int, str | int]) -> Packet:
        return cls(op, number, [(code, str(value)) for code, value in params])

    def get(self, code: int) -> str | None:
        for c, value in self.params:
            if c == code:
                return value
        return None

    def get_all(self, code: int) -> list[str]:
        return [value for c, value in self.params if c == code]

    def get_int(self, code: int) -> int | None:
        value = self.get(code)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            return None

    @property
    def is_response(self) -> bool:
        return self.op >= 50

    @property
    def header(self) -> str:
        """`ZZ:NNN`, the packet as a log names it: slicing `describe()` would cut the number short."""
        return f"{self.op:02d}:{self.number:03d}"

    def describe(self) -> str:
        """A one-line summary for logs; neither the password, a message text nor a number appears (not
        even in the SMSC's 901 text, `without_numbers`)."""
        parts = [self.header]
        for code, value in self.params:
            if code == P.PASSWORD:
                parts.append(f"{code:03d}=***")
            elif code in _TEXT_PARAMS or code in _PERSONAL_PARAMS:
                parts.append(f"{code:03d}={masked(value)}")
            else:
                if code == P.ERROR_TEXT:  # the SMSC's words, which may quote the destination
                    value = without_numbers(value)
                parts.append(f"{code:03d}={value if len(value) <= 40 else value[:37] + '...'!r}")
        return " ".join(parts)


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode(packet: Packet, *, with_checksum: bool = True) -> bytes:
    """The wire bytes of `packet`. Raises ValueError for a value that cannot go on the wire, which
    is always our own bug (the caller turns it into a MALFORMED outcome)."""
    if not 0 <= packet.op <= 99 or not 0 <= packet.number <= 999:
        raise ValueError(f"op {packet.op} / number {packet.number} out of range")
    chunks = [f"{packet.op:02d}:{packet.number:03d}\t"]
    for code, value in packet.params:
        if not 0 <= code <= 999:
            raise ValueError(f"parameter code {code} out of range")
        if any(ch in FORBIDDEN for ch in value):
            raise ValueError(f"parameter {code:03d} contains NUL, STX, ETX or TAB")
        chunks.append(f"{code:03d}:{value}\t")
    try:
        raw = b"\x02" + "".join(chunks).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"character outside ISO-8859-1 in a parameter: {exc.object[exc.start]!r}") from exc
    if with_checksum:
        raw += b"%02X" % checksum(raw)
    return raw + b"\x03"


_HEADER = re.compile(rb"(\d\d):(\d\d\d)\t")
_PARAM = re.compile(rb"(\d\d\d):(.*)", re.DOTALL)
_CHECKSUM = re.compile(rb"[0-9A-Fa-f]{2}")


def _check_value(code: int, value: str) -> str | None:
    spec = PARAMS.get(code)
    if spec is None:
        return None
    ptype, max_len = spec
    if len(value) > max_len:
        return f"{code:03d}: {len(value)} characters, at most {max_len} allowed"
    pattern = _TYPE_RE.get(ptype)
    if pattern is not None and value and not pattern.fullmatch(value):
        return f"{code:03d}: not a valid {ptype.value}"
    return None


def parse_frame(frame: bytes) -> Packet | None:
    """Parse STX..(before ETX). None when even the header is unusable; smaller faults are noted
    in `Packet.errors` and the packet is still returned so that it can be answered."""
    m = _HEADER.match(frame, 1)
    if frame[:1] != b"\x02" or m is None:
        return None
    packet = Packet(int(m.group(1)), int(m.group(2)))
    body_end = frame.rfind(b"\t") + 1
    trailer = frame[body_end:]
    fields = frame[m.end() : body_end].split(b"\t")[:-1] if body_end > m.end() else []
    if trailer:
        if _CHECKSUM.fullmatch(trailer):
            packet.checksum_ok = int(trailer, 16) == checksum(frame[:body_end])
        elif _PARAM.fullmatch(trailer):
            fields.append(trailer)
            packet.errors.append("last parameter not ended by TAB")
        else:
            packet.errors.append(f"junk before ETX: {shape(trailer)}")
    for raw in fields:
        pm = _PARAM.fullmatch(raw)
        if pm is None:
            packet.errors.append(f"bad parameter field: {shape(raw)}")
            continue
        code, value = int(pm.group(1)), pm.group(2).decode("latin-1")
        problem = _check_value(code, value)
        if problem:
            packet.errors.append(problem)
        packet.params.append((code, value))
    return packet


_CODE = re.compile(rb"\d\d\d:")
_SHAPE = bytes.maketrans(
    bytes(range(256)),
    bytes(
        57 if 48 <= b <= 57 else 97 if 65 <= b <= 90 or 97 <= b <= 122 else b if 32 <= b < 127 else 63
        for b in range(256)
    ),
)
_SHAPE_BYTES = 8
_OUTLINE_CODES = 30


def shape(data: bytes) -> str:
    """The first bytes of `data` with every digit a 9 and every letter an a (other bytes ? but ASCII
    punctuation), quoted: enough to see a header or a field cut or misspelt ("9:999", "99;"), nothing
    of a number or a text."""
    head = data[:_SHAPE_BYTES].translate(_SHAPE).decode("ascii")
    return repr(head + ("..." if len(data) > _SHAPE_BYTES else ""))


def outline(data: bytes) -> str:
    """What a log says of bytes the parser could not take (it logged their first 40 bytes: numbers
    and the start of an SMS): the header, or the shape of an unusable one, then the parameter codes
    in order, "..." after a field not ended by TAB; never a value."""
    body = data[1:] if data[:1] == b"\x02" else data
    m = _HEADER.match(body)
    if m is not None:
        words, rest = [f"{m.group(1).decode()}:{m.group(2).decode()}"], body[m.end() :]
    else:
        head, tab, rest = body.partition(b"\t")
        words = [f"header {shape(head)}" + ("" if tab else " ...")]
    fields = rest.split(b"\t") if rest else []
    last = fields.pop() if fields else b""  # not ended by TAB: a checksum, or a field cut short
    codes = [raw[:3].decode() if _CODE.match(raw) else "?" for raw in fields]
    if len(codes) > _OUTLINE_CODES:
        codes[_OUTLINE_CODES:] = [f"+{len(codes) - _OUTLINE_CODES} more"]
    if last and not _CHECKSUM.fullmatch(last):
        codes.append((last[:3].decode() if _CODE.match(last) else "?") + "...")
    return " ".join(words + codes)


class Cimd2Parser:
    """Incremental receiver: feed it whatever the socket gave, get the complete packets back.

    Resynchronisation follows Kannel and jcimd: bytes before an STX are dropped, a second STX before
    the ETX abandons the frame in progress, and a frame that grows past `max_packet` bytes without an
    ETX is dropped. `feed` never raises; every problem is counted here for `stats()`, and logged
    through a `LogThrottle` per kind, so that a flood of one (checksums an SMSC computes its own way)
    never hides the first of another (a frame dropped).
    """

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()
        self._warn = LogThrottle(log)
        self.packets = 0
        self.errors = 0  # frames dropped or parsed with faults
        self.checksum_errors = 0
        self.discarded_bytes = 0
        self.head = b""  # the session's first bytes, while no packet was read: `not_cimd2`

    def not_cimd2(self) -> str | None:
        """What the peer sent, in words, when it sent bytes and not one CIMD2 packet (an SMPP port
        answers the login with a binary generic_nack, a mail server with its banner); None otherwise."""
        if self.packets or not self.head:
            return None
        text = printable_head(self.head)
        return f"it sent '{text}'" if text else f"it sent {len(self.head)} bytes, no CIMD2 packet"

    def flush_warnings(self) -> None:
        """The connection ends: say how many warnings of each kind were held back since the last line."""
        self._warn.flush()

    def feed(self, data: bytes) -> list[Packet]:
        if not self.packets and len(self.head) < HEAD_KEPT:
            self.head += data[: HEAD_KEPT - len(self.head)]
        try:
            return self._feed(data)
        except Exception:  # a parser bug must not take the link down; drop the buffer and go on
            log.exception("cimd2.parser_bug")
            self.errors += 1
            self._buf.clear()
            return []

    def _drop(self, count: int, reason: str | None) -> None:
        if reason is not None:
            self.errors += 1
            self._warn.warning("cimd2.garbage", kind=f"garbage:{reason}", reason=reason, length=count,
                               outline=outline(bytes(self._buf[:count])))  # fmt: skip
        self.discarded_bytes += count
        del self._buf[:count]

    def _feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        while buf:
            start = buf.find(STX)
            if start < 0:
                self._drop(len(buf), None)
                break
            if start > 0:
                self._drop(start, None)
            end = buf.find(ETX, 1)
            restart = buf.rfind(STX, 1, end if end >= 0 else len(buf))
            if restart > 0:
                self._drop(restart, "STX before ETX")
                continue
            if end < 0:
                if len(buf) > self.max_packet:
                    self._drop(len(buf), f"no ETX within {self.max_packet} bytes")
                break
            if end > self.max_packet:  # the same packet split before its ETX was dropped just above
                self._drop(end + 1, f"no ETX within {self.max_packet} bytes")
                continue
            frame = bytes(buf[:end])
            del buf[: end + 1]
            packet = parse_frame(frame)
            if packet is None:
                self.errors += 1
                self._warn.warning("cimd2.bad_frame", length=len(frame), outline=outline(frame))
                continue
            if packet.checksum_ok is False:
                self.checksum_errors += 1
                self._warn.warning("cimd2.checksum_mismatch", packet=packet.describe())
            if packet.errors:
                self.errors += 1
                self._warn.warning("cimd2.packet_faults", packet=packet.describe(), faults=packet.errors)
            self.packets += 1
            out.append(packet)
        return out


def address_digits(address: str) -> str:
    """The digits of an address: how destinations are normalised for DLR matching."""
    return "".join(ch for ch in address if "0" <= ch <= "9")
