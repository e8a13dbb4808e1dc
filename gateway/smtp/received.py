"""The Received: trace line (RFC 5321 4.4) the gateway puts on a mail it hands on as it came.

Mail to postmaster is forwarded to the admin address with the original attached (`postmaster`,
`forwarded.bounce_forward`), and arrived there with no line of ours: the admin saw the sender's own
headers, which anyone can write, and not who had connected (address, HELO, TLS, when). RFC 5321 4.4
says a server that relays a mail MUST prepend one; it goes on the original, the message relayed.

No reverse DNS: a lookup per mail is a wait the session would make on the loop, and the address is
what the admin can act on. The HELO is the client's own words, shown as given but made safe: through
`gateway.mailheaders` (one line, ASCII, bounded), and without what would end the `from` clause or
open a comment in it, so that a crafted HELO cannot forge the clauses after it.
"""

from __future__ import annotations

import ipaddress
import secrets
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from acl.peer import client_address
from gateway import mailheaders as h

# RFC 1035 2.3.4: a domain name's longest; a HELO past it is no name, and the line stays far from
# RFC 5322's 998 octets whatever the client sends.
HELO_MAX = 255
UNKNOWN_HELO = "unknown"
# Characters of a HELO that would end or open a clause or a comment of the line ("(" ")" ";" "\\"),
# or part it in two (space), shown as "?".
_NOT_IN_HELO = str.maketrans(dict.fromkeys('();\\" ', "?"))


def protocol(session: Any) -> str:
    """The WITH word of RFC 3848: SMTP after HELO; after EHLO ESMTP, with S for TLS and A for a login."""
    if not getattr(session, "extended_smtp", False):
        return "SMTP"
    tls = "S" if getattr(session, "ssl", None) else ""
    login = "A" if getattr(session, "authenticated", False) else ""
    return f"ESMTP{tls}{login}"


def helo(session: Any) -> str:
    """The name the client gave in HELO/EHLO, as the line may carry it."""
    given = getattr(session, "host_name", None)
    if not given:
        return UNKNOWN_HELO
    return h.ascii_text(given, limit=HELO_MAX).translate(_NOT_IN_HELO) or UNKNOWN_HELO


def tcp_info(client_ip: str | None) -> str:
    """RFC 5321 4.4's TCP-info without the name: "[192.0.2.1]", "[IPv6:2001:db8::1]"; an IPv4 client
    of a dual-stack listener as its IPv4 address."""
    address = client_address(client_ip)
    if address is None:
        return ""  # not TCP (a test's transport), or not an address: said nowhere rather than forged
    if isinstance(address, ipaddress.IPv6Address):
        return f"[IPv6:{address.compressed}]"
    return f"[{address}]"


def _tls(session: Any) -> str:
    """The TLS version and cipher the session was on, as Postfix says them in a comment."""
    extra = getattr(session, "ssl", None) or {}
    obj = extra.get("ssl_object") if isinstance(extra, dict) else None
    if obj is None:
        return ""
    cipher = obj.cipher()
    said = f"using {obj.version()}" + (f" with cipher {cipher[0]}" if cipher else "")
    return h.ascii_text(said, limit=120).translate(str.maketrans("();\\", "????"))


def received(session: Any, client_ip: str | None, by_host: str, rcpt: str, now: datetime) -> bytes:
    """The Received: field (folded, CRLF line ends) for a mail `session` brought from `client_ip` to
    `rcpt`, taken by `by_host` at `now`. Its id names nothing stored: it tells this hop's line from
    another's when the admin compares copies."""
    host = "".join(h.ascii_text(by_host, limit=HELO_MAX).split()).translate(_NOT_IN_HELO) or UNKNOWN_HELO
    where = tcp_info(client_ip)
    lines = [f"Received: from {helo(session)}" + (f" ({where})" if where else "")]
    if tls := _tls(session):
        lines.append(f"\t({tls})")
    lines.append(f"\tby {host} with {protocol(session)} id {secrets.token_hex(8)}")
    to = h.address(rcpt)
    lines.append((f"\tfor <{to}>;" if "@" in to else "\t;") + f" {format_datetime(now)}")
    return "\r\n".join(lines).encode("ascii", "replace") + b"\r\n"
