"""aiosmtpd's own replies, with the RFC 3463 enhanced codes its wording lacks.

RFC 2034: once ENHANCEDSTATUSCODES is advertised, every reply but the greeting and EHLO's carries
one. aiosmtpd (1.4) writes some replies itself; each gets its code here (the wording
stays), or the gateway's own reply where the client must hear the case otherwise (`REWRITE`;
a server class extends it with its own).
"""

from __future__ import annotations

from gateway.smtp import replies

# aiosmtpd's (1.4) own replies that carry no RFC 3463 code, and the code each gets; the wording stays.
# RFC 2034: once ENHANCEDSTATUSCODES is advertised, every reply but the greeting and EHLO's has one.
_AIOSMTPD_CODES = {
    "500 Error: bad syntax": "5.5.2",
    # An ordinary command line (Postfix: 500 5.5.2). RFC 4954's 5.5.6 is for AUTH lines, which the
    # guard lets be 12288 octets and closes past that (guard.COMMAND_LINE_CAP): this is never one.
    "500 Command line too long": "5.5.2",
    "501 Syntax: HELO hostname": "5.5.2",
    "501 Syntax: EHLO hostname": "5.5.2",
    "503 Error: send HELO first": "5.5.1",
    "503 Error: send EHLO first": "5.5.1",
    "501 Syntax: MAIL FROM: <address>": "5.5.2",
    "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]": "5.5.2",
    "503 Error: nested MAIL command": "5.5.1",
    "501 Error: BODY can only be one of 7BIT, 8BITMIME": "5.5.4",
    "501 Error: SMTPUTF8 takes no arguments": "5.5.4",
    "501 Error: SMTPUTF8 disabled": "5.5.4",
    "555 MAIL FROM parameters not recognized or not implemented": "5.5.4",
    "503 Error: need MAIL command": "5.5.1",
    "501 Syntax: RCPT TO: <address>": "5.5.2",
    "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]": "5.5.2",
    "555 RCPT TO parameters not recognized or not implemented": "5.5.4",
    "503 Error: need RCPT command": "5.5.1",
    "501 Syntax: DATA": "5.5.2",
    "501 Syntax: RSET": "5.5.2",
    "501 Syntax: QUIT": "5.5.2",
    "501 Syntax: VRFY <address>": "5.5.2",
    "501 Syntax: STARTTLS": "5.5.2",
    "454 TLS not available": "4.7.0",
    "554 Command refused due to lack of security": "5.7.0",
    "501 Not enough value": "5.5.2",  # AUTH without a mechanism
    "501 Too many values": "5.5.2",
    "503 Already authenticated": "5.5.1",
    "502 EXPN not implemented": "5.5.1",
    "252 Cannot VRFY user, but will accept message and attempt delivery": "2.0.0",
    "250 OK": "2.0.0",
    "220 Ready to start TLS": "2.0.0",
    "221 Bye": "2.0.0",
}
# The same for the replies aiosmtpd words with a detail in them (a command name, an address, a list).
_AIOSMTPD_PREFIXES = (
    ("500 Error: command ", "5.5.1"),  # '"XYZZY" not recognized', and 'AUTH' after HELO
    ("250 Syntax: ", "2.0.0"),  # HELP <command>
    ("250 Supported commands: ", "2.0.0"),  # HELP
    ("501 Supported commands: ", "5.5.4"),  # HELP <no such command>
    ("502 Could not VRFY ", "5.1.3"),  # an address that does not parse
)


# aiosmtpd's reply to a command it does not know echoes the line's first word, upper-cased. After a
# 501 in AUTH LOGIN or PLAIN a client sends its password all the same, which is then read as a
# command: `500 Error: command "MYS3CRETPLAIN2" not recognized`, kept in mail clients' protocol logs
# (in clear text on the relay port). Only a verb some SMTP server knows is named (the client asked
# for a real extension); any other word is not echoed, as the log shows only its length (`unknownlog`).
_UNKNOWN = ('500 Error: command "', '" not recognized')
_VERBS = frozenset(
    {"ATRN", "AUTH", "BDAT", "ETRN", "SAML", "SEND", "SOML", "TURN", "VERB", "ONEX", "XCLIENT", "XFORWARD"}
    | {"XEXCH50", "X-EXPS", "X-LINK2STATE", "XUSR", "XADR", "XQUE", "XSTA", "XTRN", "XTLS", "LHLO"}
    | {"STARTTLS"}
)
UNKNOWN_COMMAND = "500 5.5.1 Error: command not recognized"


def _coded(status: str, code: str) -> str:
    return f"{status[:4]}{code} {status[4:]}"


def with_prefix_code(status: str) -> str:
    """A reply of aiosmtpd's with a detail in it, coded; any other reply as it is."""
    if status[4:5].isdigit():  # coded already, as is every reply of the gateway's own
        return status
    if status.startswith(_UNKNOWN[0]) and status.endswith(_UNKNOWN[1]):
        if status[len(_UNKNOWN[0]) : -len(_UNKNOWN[1])] not in _VERBS:
            return UNKNOWN_COMMAND
    for prefix, code in _AIOSMTPD_PREFIXES:
        if status.startswith(prefix):
            return _coded(status, code)
    return status


REWRITE: dict[str, str] = {
    **{status: _coded(status, code) for status, code in _AIOSMTPD_CODES.items()},
    "552 Error: Too much mail data": replies.TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": replies.TOO_BIG,
    # GuardedSMTP lets a DATA line be the size limit + 2 long (at least): a longer one makes
    # the mail too big, and that is what the client needs to hear (F11), not a line rule.
    "500 Line too long (see RFC5321 4.5.3.1.6)": replies.TOO_BIG,
    # Non-ASCII bytes in a command's argument (an address, mostly) without SMTPUTF8.
    "500 Error: strict ASCII mode": replies.NON_ASCII,
    "502 5.5.1 Too many unrecognized commands, goodbye.": replies.TOO_MANY_UNKNOWN,
}
