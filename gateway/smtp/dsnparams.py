"""SMTP DSN parameters (RFC 3461): what a mail program asks to be told about each recipient.

Outlook's "Request a delivery receipt", Thunderbird's "Delivery Status Notification" and a company
MTA relaying either send `RCPT TO:<…> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;…` and `MAIL FROM:<…>
RET=HDRS ENVID=…`, but only to a server whose EHLO lists `DSN`. aiosmtpd knows none of them (555)
and upper-cases every parameter, which would change ORCPT's address and ENVID's opaque id; so the
server takes them off the command line as written (`split_params`) before aiosmtpd reads the rest.

DELAY is accepted and never acted on: an SMS waits in the queue for its validity and then fails
(`expired`), which is reported as a failure; there is no "still trying" notice (RFC 3461 allows that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.store.records import Acceptance

# RFC 3461 4.1: NEVER alone, or any of the others once each.
_NOTIFY_WORDS = frozenset({"SUCCESS", "FAILURE", "DELAY"})
# RFC 3461 4: xtext is ASCII 33..126 but "+" and "=", or "+" and two upper-case hex digits.
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*\Z")
_HEX = re.compile(r"\+([0-9A-F]{2})")
# RFC 3461 4.2: addr-type is an atom (RFC 5321), `rfc822` for an Internet address.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+\Z")
# RFC 6533 3: the `utf-8` address type's ORCPT is utf-8-addr-xtext (ASCII) or, from a client that was
# offered SMTPUTF8 (go-smtp, maddy), utf-8-addr-unitext (raw UTF-8): QCHAR (printable ASCII but
# "+", "=" and "\\"), any non-ASCII character in the unitext form, and `\x{HEX}` for the rest.
_UTF8_ADDR = re.compile(r"(?:[!-*,-<>-\[\]-~]|[^\x00-\x7f]|\\x\{[0-9A-F]{2,6}\})+\Z")
_EMBEDDED = re.compile(r"\\x\{([0-9A-F]{2,6})\}")
ENVID_MAX = 100  # RFC 3461 4.4
ORCPT_MAX = 500  # RFC 3461 4.2
MAIL_KEYS = ("RET", "ENVID")
RCPT_KEYS = ("NOTIFY", "ORCPT")

BAD_PARAM = "501 5.5.4 {}: {}"


class BadParam(ValueError):
    """A DSN parameter that breaks RFC 3461's syntax; its text is the whole 501 reply."""


@dataclass(frozen=True, slots=True)
class RcptAsks:
    """One recipient's request: `notify` as stored (`never`, or `success,failure,delay` in any
    subset), None when the client gave no NOTIFY (the account's `dlr_mail` decides); `orcpt` the
    original recipient as `type;address` decoded from xtext (a `utf-8` one from RFC 6533's forms), for
    the DSN's Original-Recipient."""

    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class MailAsks:
    """The mail's request: `ret` `full` or `hdrs` (what of the mail a failure DSN returns), `envid`
    the client's id of this transmission decoded from xtext, for the DSN's Original-Envelope-Id."""

    ret: str | None = None
    envid: str | None = None


def split_params(arg: str, keys: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The MAIL/RCPT argument without the `keys` parameters, and those parameters as written
    (key upper-cased). Parameters follow the path's closing ">"; a key given twice is refused."""
    end = arg.find(">")
    if end < 0:
        return arg, {}
    kept, found = [], {}
    for word in arg[end + 1 :].split():
        key, eq, value = word.partition("=")
        if eq and key.upper() in keys:
            if key.upper() in found:
                raise BadParam(BAD_PARAM.format(key.upper(), "given twice"))
            found[key.upper()] = value
        else:
            kept.append(word)
    if not found:
        return arg, {}
    return " ".join([arg[: end + 1], *kept]), found


def rcpt_asks(params: dict[str, str]) -> RcptAsks | None:
    """NOTIFY and ORCPT checked and decoded; None when the client gave neither."""
    if not params:
        return None
    notify = params.get("NOTIFY")
    if notify is not None:
        words = notify.upper().split(",")
        if words == ["NEVER"]:
            notify = "never"
        elif not all(w in _NOTIFY_WORDS for w in words) or len(set(words)) != len(words):
            why = "not NEVER or a list of SUCCESS, FAILURE, DELAY"
            raise BadParam(BAD_PARAM.format(f"NOTIFY={_shown(notify)}", why))
        else:
            notify = ",".join(w.lower() for w in ("SUCCESS", "FAILURE", "DELAY") if w in words)
    orcpt = params.get("ORCPT")
    if orcpt is not None:
        kind, semi, address = orcpt.partition(";")
        decode = _utf8_addr if kind.lower() == "utf-8" else _xtext
        decoded = decode(address) if semi and len(orcpt) <= ORCPT_MAX else None
        if not _ATOM.match(kind) or not decoded:
            why = "not an address type, ';' and an xtext address"
            raise BadParam(BAD_PARAM.format(f"ORCPT={_shown(orcpt)}", why))
        orcpt = f"{kind.lower()};{decoded}"
    return RcptAsks(notify, orcpt)


def mail_asks(params: dict[str, str]) -> MailAsks | None:
    """RET and ENVID checked and decoded; None when the client gave neither."""
    if not params:
        return None
    ret = params.get("RET")
    if ret is not None:
        if ret.upper() not in ("FULL", "HDRS"):
            raise BadParam(BAD_PARAM.format(f"RET={_shown(ret)}", "not FULL or HDRS"))
        ret = ret.lower()
    envid = params.get("ENVID")
    if envid is not None:
        decoded = _xtext(envid) if len(envid) <= ENVID_MAX else None
        if not decoded:
            raise BadParam(
                BAD_PARAM.format(f"ENVID={_shown(envid)}", f"not xtext of at most {ENVID_MAX} characters")
            )
        envid = decoded
    return MailAsks(ret, envid)


def _xtext(value: str) -> str | None:
    """The text an xtext stands for, or None for bad xtext or text a header must not carry (a
    control character, a byte that is no ASCII): the DSN's fields hold it as it is."""
    if not _XTEXT.match(value):
        return None
    decoded = _HEX.sub(lambda m: chr(int(m.group(1), 16)), value)
    if not all(" " <= c <= "~" for c in decoded):
        return None
    return decoded


def _utf8_addr(value: str) -> str | None:
    """The address an RFC 6533 utf-8-addr-xtext or utf-8-addr-unitext stands for, or None for one in
    neither form or that stands for a control character (CR and LF above all): a header must not carry
    it. Every other character, Polish letters among them, stays: the DSN writes it back encoded."""
    if not _UTF8_ADDR.match(value):
        return None
    try:
        decoded = _EMBEDDED.sub(lambda m: chr(int(m.group(1), 16)), value)
    except ValueError:  # a code point past U+10FFFF
        return None
    if any(not c.isprintable() and c != " " for c in decoded):
        return None
    return decoded


def utf8_addr_xtext(address: str) -> str:
    """RFC 6533's 7-bit form of a `utf-8` address, as a message/delivery-status field carries it:
    `józef@acme.example` → `j\\x{F3}zef@acme.example`. It holds no space and no "=", so neither
    folding nor an encoded-word reading can alter it."""
    return "".join(c if "!" <= c <= "~" and c not in "+=\\" else f"\\x{{{ord(c):02X}}}" for c in address)


def _shown(value: str) -> str:
    """A refused value as a reply line may echo it: ASCII, bounded."""
    shown = "".join(c if "!" <= c <= "~" else "?" for c in value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def onto_rows(acceptance: Acceptance, envelope: dict[str, Any]) -> None:
    """The mail's RFC 3461 requests onto its rows: RET/ENVID on the email, NOTIFY/ORCPT on each
    number's message (`envelope`: what the relay's hooks noted). A mail without them (nearly all)
    is left as it is."""
    mail: MailAsks | None = envelope.get("dsn_mail")
    if mail is not None:
        acceptance.dsn_ret, acceptance.envid = mail.ret, mail.envid
    asked: dict[str, RcptAsks] = envelope.get("dsn", {})
    if asked:
        for message in acceptance.messages:
            if (asks := asked.get(message.recipient)) is not None:
                message.notify, message.orcpt = asks.notify, asks.orcpt


def never_asked(envelope: dict[str, Any]) -> frozenset[str]:
    """The numbers whose RCPT said NOTIFY=NEVER: the mail's notices leave them out (`compose`)."""
    asked: dict[str, RcptAsks] | None = envelope.get("dsn")
    if not asked:  # most mail asks nothing
        return _NONE
    return frozenset(number for number, asks in asked.items() if asks.notify == "never")


_NONE: frozenset[str] = frozenset()


def joined(first: RcptAsks | None, then: RcptAsks | None) -> RcptAsks | None:
    """One phone named twice in a mail (`601…@` and `+48601…@`) asked what either naming asked
    (RFC 3461 NOTIFY): NEVER only when both said NEVER, a naming without NOTIFY counting as the
    default FAILURE (with a NEVER: the account's rule, as if neither had asked). The first ORCPT
    stays, the address the client will look for."""
    first, then = first or RcptAsks(), then or RcptAsks()
    if first == then:
        return None if first == RcptAsks() else first
    a, b = first.notify, then.notify
    if a == b or {a, b} == {None, "never"}:
        notify = a if a == b else None
    else:  # NEVER's word is no outcome: dropped by the join
        words = {*(a or "failure").split(","), *(b or "failure").split(",")}
        notify = ",".join(w for w in ("success", "failure", "delay") if w in words)
    return RcptAsks(notify, first.orcpt or then.orcpt)


def notices_asked(notify: str) -> str:
    """What the sender's mail program asked to be told about this SMS (SMTP DSN NOTIFY), where it
    overrides the account's `dlr_mail`: an operator asked "why did he get no bounce" reads it here."""
    if notify == "never":
        return "none (the mail program asked NOTIFY=NEVER)"
    return f"{', '.join(notify.split(','))} (the mail program's NOTIFY)"


def dsn_asked(envid: str | None, ret: str | None) -> str:
    """The mail's own DSN requests: the envelope id its notices carry, and how much of it they return."""
    said = [f"envelope id {envid}"] if envid else []
    if ret:
        said.append("notices return the headers only" if ret == "hdrs" else "notices return the whole mail")
    return ", ".join(said)
