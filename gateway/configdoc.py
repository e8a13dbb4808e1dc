"""docs/config.md, generated from the config model so that no key goes undocumented.

Names, types and defaults come from the pydantic model itself; the meaning of each key is kept
here. A test regenerates the page and fails when a key has no meaning or the page is stale, so
adding a key to a section (gateway/config.py, gateway/configfeatures.py) means adding a line below and running
`python -m gateway.configdoc > docs/config.md`.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from gateway.config import Config

MEANINGS: dict[str, str] = {
    "gateway.domains": "mail domains the gateway accepts: mail to NUMBER@DOMAIN becomes an SMS",
    "gateway.default_region": "ISO 3166 region of numbers written without a country code",
    "gateway.number_types": (
        "kinds of number SMS are sent to, by libphonenumber's types: MOBILE, FIXED_LINE_OR_MOBILE,"
        " FIXED_LINE, VOIP, PAGER, PERSONAL_NUMBER, TOLL_FREE, PREMIUM_RATE, SHARED_COST, UAN, VOICEMAIL,"
        " and GLOBAL (satellite phones and international networks: +870, +881, +882, +883); others get"
        " 550 5.1.1 at RCPT"
    ),
    "gateway.state_dir": "database, status file, self-signed certificate (relative: to the config)",
    "gateway.billing_dir": (
        "where the monthly billing files are kept, as YYYY-MM/ACCOUNT.txt (relative: to the config);"
        " unset: state_dir/billing. Outside /var/lib/smsgw the systemd unit must name it in ReadWritePaths="
    ),
    "gateway.hostname": "this gateway's name in SMTP banners and Message-IDs",
    "gateway.subject_max": "characters of the mail subject put before the text (0: subject left out)",
    "gateway.subject_separator": "between the subject and the text",
    "gateway.end_marker": "a line holding only this ends the text (signatures below it are dropped)",
    "gateway.charset_fallbacks": "character sets tried, in order, for mail that names none or a wrong one",
    "gateway.max_parts": "most SMS parts one message may become (10 at most, R-1.4; more is used as 10)",
    "gateway.validity_hours": "how long the SMSC keeps trying an SMS; also when a waiting part expires here",
    "gateway.queue_high_water": (
        "parts waiting; above it an account holding more than its share of them gets 451 (try later),"
        " above twice it every account"
    ),
    "gateway.retry_base_seconds": "first retry after a temporary SMSC fault; doubles with each retry",
    "gateway.timezone": "IANA time zone of quiet hours and of daily and monthly periods (e.g. Europe/Warsaw)",
    "gateway.language": (
        'language of the mails people read (bounces, answers, notices, premium and billing mails): "en"'
        ' or "pl" (Polish office); SMTP replies, headers other than Subject and bounce fields stay as'
        " they are"
    ),
    "gateway.default_sender": "sender of accounts without their own (a number, so phones can answer)",
    "gateway.optout_words": "an SMS from a phone holding only one of these words puts it on the opt-out list",
    "gateway.optin_words": (
        "an SMS holding only one of these takes its phone off the opt-out list when an opt-out word"
        " from that phone put it there (not when an admin did)"
    ),
    "gateway.identical_per_day": "more identical SMS to one number in a day are refused",
    "gateway.suspend_after": "an account's failed deliveries are judged over its last this many messages",
    "gateway.suspend_failed_share": "more failures than this share of suspend_after among them suspends it",
    "gateway.retention_days": "finished messages and their records older than this are deleted",
    "gateway.early_dlr_max_age_minutes": "an early receipt older than this matches no new part",
    "smtp.listen": 'relay listener, HOST:PORT (clients allowed by network); "[::]:PORT" takes IPv4 and IPv6',
    "smtp.submission_listen": 'submission listener with STARTTLS and AUTH (mail clients); "" turns it off',
    "smtp.tls_cert_file": (
        "certificate of the submission port and of the relay port's STARTTLS; unset: a self-signed one"
        " is made in state_dir (with submission_listen)"
    ),
    "smtp.relay_starttls": (
        "offer STARTTLS on the relay port (listen) with that certificate, TLS 1.0 and up (the"
        " alternative is plain text); false: plain SMTP only"
    ),
    "smtp.tls_key_file": "its private key; a bare name is looked up in $CREDENTIALS_DIRECTORY first",
    "smtp.max_message_bytes": "largest mail accepted (SIZE)",
    "smtp.timeout_seconds": "an idle SMTP session is closed after this",
    "smtp.auth_max_failures": (
        "failed logins of one login from one address within the window; the last gets 421 instead"
        " of 535 and that login is locked at that address (others behind the same NAT go on)"
    ),
    "smtp.auth_max_failures_per_address": (
        "failed logins of any login from one address (IPv6: /64) before the address is locked for"
        " logins that have not succeeded from it in the last 30 days"
    ),
    "smtp.auth_max_failures_per_login": (
        "failed logins of one login from any address before the login is locked everywhere"
    ),
    "smtp.auth_max_failures_overall": "failed logins per minute on the whole gateway; beyond it logins wait",
    "smtp.auth_failure_window_seconds": (
        "failed logins count in this window (a lock: 5 min, doubling to 1 h; `smsgw auth unlock` lifts it)"
    ),
    "smtp.max_connections": "SMTP sessions on both listeners together; keep below the unit's LimitNOFILE",
    "smtp.max_connections_per_address": "sessions per IPv4 address or IPv6 /64",
    "smtp.max_commands_without_mail": (
        "commands other than RCPT (up to 2,000 of those) in a session without a mail accepted"
        " before it is closed"
    ),
    "smtp.intake_processes": "worker processes serving the relay port (SMTP, MIME, acceptance) on"
    " more cores; 0 keeps it in the daemon's process. Each enforces the connection limits on its own",
    "mail.relay": 'relay for bounces, notices, replies (HOST:PORT), or "maildir:DIR" for files',
    "mail.from_address": "envelope and From address of notices and replies",
    "mail.admin_address": "where notices for the administrator go",
    "mail.relay_username": "login at the relay (AUTH), if it asks for one",
    "mail.relay_password": "password at the relay (keep config.toml mode 640 when set)",
    "mail.relay_password_file": (
        "file with the relay password; a bare name is looked up in $CREDENTIALS_DIRECTORY first"
    ),
    "mail.relay_starttls": '"when-offered": STARTTLS where the relay offers it, its certificate not'
    " checked, plain text if the handshake fails (logged; Postfix `may`), but with a relay password never"
    " in plain text to a relay off loopback (the mail waits for TLS); true: STARTTLS required, the"
    " certificate checked against the system's CAs and must name the host in `relay`; false: never (a"
    " password then goes in clear, which check-config warns of)",
    "mail.relay_tls_ca_file": "CA certificate (PEM) that issued the relay's certificate, for a self-signed"
    " or internal-CA relay (relative: to the config); with relay_starttls = true or relay_implicit_tls",
    "mail.relay_tls_verify": "false: take any certificate of the relay (the mail is still encrypted), only"
    " for a relay on loopback or a trusted LAN; with relay_starttls = true or relay_implicit_tls",
    "mail.relay_implicit_tls": "true: TLS from the connection on (SMTPS, the relay's port 465), the"
    " certificate checked as with relay_starttls = true, which is then left out; check-config warns of a"
    " relay on port 465 without it",
    "mail.max_attempts": "tries per outgoing mail before it is marked failed (see `smsgw outbox list`);"
    " the back-off doubles from 30 s to an hour, so 125 tries take about five days",
    "smsc.name": "the link's name in logs, status and routing",
    "smsc.type": '"smpp" (SMPP 3.4) or "cimd2" (Nokia CIMD2)',
    "smsc.host": "the operator's SMSC address",
    "smsc.port": "the operator's SMSC port",
    "smsc.system_id": (
        "login at the SMSC (SMPP system_id / CIMD2 user identity); links with the same `type`, `host`,"
        " `port` and `system_id` are binds of one account: a receipt that comes by one of them is matched"
        " to the SMS of all"
    ),
    "smsc.smsc_account": (
        "a name for the SMSC account this link is a bind of, when its binds go to several hosts or"
        " ports: links naming the same one have their receipts matched across them (Kannel's"
        " smsc-admin-id); they must be of one type (links of another system_id are warned of)"
    ),
    "smsc.password": "password at the SMSC (prefer password_file)",
    "smsc.password_file": "file with the password; a bare name is looked up in $CREDENTIALS_DIRECTORY first",
    "smsc.system_type": "SMPP system_type, if the operator asks for one",
    "smsc.prefixes": (
        'numbers this link sends to ("+48", "+4860"); empty: the default route. One no number can start'
        ' with is refused (a 0 after "+", or over 15 digits); one an `exclusive` link lists too is warned'
        " of while this link is not exclusive: its numbers leave by either link"
    ),
    "smsc.exclusive": (
        "true: numbers under this link's prefixes leave only by the links listing a matching prefix,"
        " never by a default link; while those are down or full they wait (and expire by their"
        " validity). For numbers only this operator may carry (Kannel's allowed-prefix). Needs prefixes;"
        " a longer plain prefix of another link still takes its numbers"
    ),
    "smsc.window": "submits awaiting an answer at once (a CIMD2 link without the key: 1, stop-and-wait)",
    "smsc.max_per_second": "submits per second the contract allows",
    "smsc.enquire_link_seconds": "keep-alive on an idle link (SMPP enquire_link / CIMD2 alive)",
    "smsc.response_timeout_seconds": "an unanswered request after this counts as lost",
    "smsc.late_answer_grace_seconds": (
        "an unanswered submit waits this long before it is sent again; longer, by at most five response"
        " timeouts, while the link's reader stands paused behind a flood of MOs with its answer unread"
    ),
    "smsc.lost_submit_settle_seconds": (
        "a submit written to a session that ended before its answer (SMPP: also one past its response"
        " timeout) may have been taken; it keeps its turn (the phone's later SMS wait behind it)"
        " and goes again this long after the next login or bind (after the loss, with another bind of"
        " the account up), unless the SMSC's report of it settles it first: a CIMD2 status report, an"
        " SMPP receipt naming its phone, a submit date from its write on and its text. A report is a"
        " delivery report: it comes when the phone has the SMS, within tens of seconds for a phone that"
        " is on, so a few seconds sends it twice. late_answer_grace_seconds bounds it; 0: sent again at"
        " the login, logged as a possible duplicate"
    ),
    "smsc.reconnect_min_seconds": "first pause before reconnecting; doubles up to the maximum",
    "smsc.reconnect_max_seconds": "longest pause between reconnects; only a session that stayed up"
    " this long (or 30 s, if shorter) starts the pauses again from the first",
    "smsc.throttle_pause_seconds": "pause after the SMSC says it is throttled",
    "smsc.dc0_charset": (
        "what the SMSC reads SMPP data_coding 0 as, both ways: gsm (GSM 03.38, the default) or latin1"
        " (Kannel's alt-charset; a text with a GSM character Latin-1 lacks, € or a Greek capital, then goes"
        " UCS-2). CIMD2 links ignore it"
    ),
    "smsc.validity_format": (
        "how SMPP's validity_period is written: relative (the default: the time left of the SMS's validity"
        " at its submit, which the SMSC counts from when it takes it, whatever its clock or time zone) or"
        " absolute (the end in UTC, as Kannel sends it, for an SMSC that refuses a relative one; one whose"
        " clock or zone differs from ours then expires SMS early or keeps them long). A relative link whose"
        " SMSC answers ESME_RINVEXPIRY tries absolute by itself, its SMS sent again; kept absolute until"
        " the daemon restarts once the SMSC takes an absolute one (logged as smpp.validity_refused, naming"
        " this key), else relative again and that SMS refused. CIMD2 links always send a relative 050, and"
        " refuse the key"
    ),
    "smsc.message_id_type": "how a receipt's text writes the id submit_sm_resp gave: as_is, hex_to_dec"
    " (answered in hex, reported in decimal) or dec_to_hex; a receipted_message_id TLV is matched"
    " as the submit_sm_resp id itself",
    "smsc.sender_prefix": "CIMD2: the number of the SMSC interface, which it puts before the sender (023 is a"
    " sub-address): a number sender under it goes without it, one outside it without 023 (logged);"
    ' "never": no 023 at all (Kannel\'s sender-prefix)',
    "smsc.status_reports": "CIMD2: false sends no status report request (056), for an SMSC account that"
    " refuses one (900:310 incorrect status report request; Kannel's no-dlr): its SMS then end"
    " unreported (sent, no report came) a day after their validity instead of failing",
    "smsc.tls": "connect over TLS (the operator's SMPP or CIMD2 TLS port); the tls_* keys only with it",
    "smsc.tls_ca_file": (
        "PEM file of the CA that issued the SMSC's certificate, or of a self-signed SMSC's own certificate"
        " (it pins that one); relative: to the config. Unset: the system's trust store"
    ),
    "smsc.tls_verify": (
        "check the SMSC's certificate and its name; false (warned at every start and by check-config)"
        " lets anyone on the path pose as the SMSC: pin its certificate with tls_ca_file instead"
    ),
    "smsc.tls_server_name": (
        "the name the certificate must hold (and sent as SNI), for an SMSC given by its IP address;"
        " unset: host"
    ),
    "smsc.tls_cert_file": (
        "PEM client certificate, for an operator that authenticates binds by it (with tls_key_file, or"
        " holding the key too); relative: to the config"
    ),
    "smsc.tls_key_file": "the client certificate's key (PEM, unencrypted); relative: to the config",
    "smsc.source_ton": (
        "SMPP source TON (0-6) of phone-number senders instead of the detected one (a short code keeps 3"
        " unless 0 or 6)"
    ),
    "smsc.source_npi": (
        "SMPP source NPI of phone-number senders instead of the detected one (a short code keeps 0 for 1)"
    ),
    "simulator.enabled": "run the built-in SMSC simulator inside the daemon (off in production)",
    "simulator.host": "the simulator's listen address",
    "simulator.smpp_port": "its SMPP port",
    "simulator.cimd2_port": "its CIMD2 port",
    "simulator.control_port": (
        "port `smsgw simulator ...` commands talk to; 0: one the OS picks, which the simulator (in"
        " `smsgw run` or `smsgw simulator run`) writes beside its log for them (simulator.control-port)"
    ),
    "simulator.log": "JSON lines of every SMS the simulator received",
    "simulator.system_id": "login the simulator accepts",
    "simulator.password": "password the simulator accepts",
    "simulator.fail_suffixes": "numbers ending so get a failed receipt",
    "simulator.reject_suffixes": "numbers ending so are refused at submit",
    "simulator.dlr_delay_seconds": "delay before the simulator's receipt",
    "simulator.max_submits_per_second": "error injection, 0 off: a login's submits past this in a second"
    " are throttled (SMPP 0x58, CIMD2 900:10)",
    "simulator.max_unanswered_submits": "error injection, 0 off: a submit while a session has this many"
    " unanswered finds the queue full (SMPP 0x14, CIMD2 900:10)",
    "simulator.response_delay_seconds": "error injection: the simulator answers each submit this late",
    "simulator.tls_cert_file": (
        "PEM certificate: the SMPP and CIMD2 ports then speak TLS only (the control port stays in clear);"
        " relative: to the config"
    ),
    "simulator.tls_key_file": "its key (PEM, unencrypted)",
    "simulator.tls_client_ca_file": (
        "PEM CA: a client must then show a certificate it issued, as an operator that authenticates binds"
        " by certificate asks"
    ),
    "replies.window_days": "an answer from a phone within this of the last SMS reaches its sender",
    "replies.pool": 'reply numbers: "+48500100200" or ranges "+48500100300..+48500100399"',
    "replies.fallback_address": (
        "where answers with no conversation, and bounces the gateway receives, go; unset: recorded only"
    ),
    "replies.mails_per_phone_per_hour": (
        "answers one phone may have mailed in an hour; more are kept (mo list) and mailed together in one"
        " mail once the phone has had none kept for an hour; 0: no limit"
    ),
    "replies.reassembly_timeout_seconds": (
        "a long SMS from a phone is mailed with a gap for parts that have not come this long after its last"
    ),
    "web.enabled": "serve the admin panel and /metrics (the shipped config turns it on)",
    "web.listen": (
        'host:port of the panel ("[::]:PORT" takes IPv4 and IPv6); keep it on loopback unless metrics_token'
        " is set"
    ),
    "web.tls_cert_file": "certificate for HTTPS (the session cookie is then Secure)",
    "web.tls_key_file": "its private key",
    "web.metrics_token": "when set, /metrics wants `Authorization: Bearer <token>`",
    "web.session_hours": "the most a panel login lasts; it ends sooner after 30 idle minutes",
    "web.trusted_proxies": "IP addresses of reverse proxies whose X-Forwarded-For names the client"
    " (the login lockout counts by it) and whose X-Forwarded-Proto says whether the browser used HTTPS;"
    " none: the connection's address",
    "web.hostnames": "names the panel answers to besides IP addresses, localhost and the listen name"
    " (a reverse proxy's or the TLS certificate's); requests for any other name are refused (DNS rebinding)",
    "premium.numbers": 'premium numbers ("7355"); price and commission from the operator list',
    "premium.number": '`[[premium.number]]`: `number`, `price = "3.00"`, `commission = "1.10"` (PLN net)',
    "premium.answers_per_mo": "free answer SMS per premium SMS, so that a mail loop cannot spend more",
    "premium.fallback_address": (
        "where SMS with an unknown password go; unset: [replies] fallback_address, else [mail] admin_address"
    ),
    "premium.verification_days": "how long a client's confirmation token is good for",
    "account.name": "account created at start when missing (then owned by `smsgw account`)",
    "account.relay_networks": "networks (CIDR) allowed to relay for it",
    "account.users": "sender addresses of the account",
    "account.sender": "its originating address",
}


def _sections() -> list[tuple[str, type[BaseModel], bool]]:
    out = []
    for name, field in Config.model_fields.items():
        if field.exclude:
            continue
        ann = field.annotation
        args = typing.get_args(ann)
        model = args[0] if args else ann
        out.append((name, model, bool(args)))
    return out


def _type(ann: Any) -> str:
    text = getattr(ann, "__name__", None) if not typing.get_args(ann) else None
    text = text or re.sub(r"\b(?:typing|pathlib|pydantic\.types|gateway\.\w+)\.", "", str(ann))
    if text.startswith("Union[") and text.endswith("]"):  # `bool | Literal[...]` as written
        text = " | ".join(_top_level(text[len("Union[") : -1]))
    return text.replace("NoneType", "None").replace("PosixPath", "Path")


def _top_level(text: str) -> list[str]:
    """The comma-separated parts of `text` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return f'"{value}"'
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return str(value)


def missing() -> list[str]:
    """Keys of the model without a meaning here."""
    return [
        f"{s}.{k}" for s, model, _ in _sections() for k in model.model_fields if f"{s}.{k}" not in MEANINGS
    ]


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config model by `python -m gateway.configdoc > docs/config.md`; a test keeps",
        "it complete. Unknown keys are refused, so a typo stops the start with the key named.",
        "Check a file with `smsgw check-config`.",
    ]
    for section, model, repeated in _sections():
        title = f"[[{section}]]" if repeated else f"[{section}]"
        lines += ["", f"## {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, field in model.model_fields.items():
            meaning = MEANINGS.get(f"{section}.{key}", "")
            lines.append(f"| `{key}` | {_type(field.annotation)} | `{_default(field)}` | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
