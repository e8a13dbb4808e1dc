"""SMTP replies the gateway gives, as named constants shared by the code and its tests.

Texts follow what Postfix and the RFCs use (RFC 3463 enhanced codes), so that mail clients and
admins reading logs recognise them; the ones with `{}` take a detail.
"""

from __future__ import annotations

OK = "250 2.0.0 OK"
OK_SENDER = "250 2.1.0 Sender OK"
OK_RCPT = "250 2.1.5 Recipient OK"
OK_QUEUED = "250 2.0.0 OK: queued as {}"
OK_DUPLICATE = "250 2.0.0 OK: already accepted (duplicate of an earlier delivery)"
OK_NOT_SENT = "250 2.0.0 OK: recorded, not sent as SMS ({})"

BAD_NUMBER = "550 5.1.1 <{}>: not a valid phone number ({})"
# The gateway's own premium short code ([premium] numbers): phones send to it, no SMS is sent to it.
PREMIUM_NUMBER = (
    "550 5.1.1 <{}>: {} is this gateway's premium short number, which takes SMS from phones;"
    " the gateway sends no SMS to it"
)
NOT_SERVED = "550 5.1.1 <{}>: {}: {} numbers are not served by this gateway"  # [gateway] number_types
# R-2.1's refusals of who may send begin with its words ("530 5.7.0 Authentication required",
# "550 5.7.1 Relay access denied"), which admins grep logs for; the why follows after a colon.
# A foreign domain keeps Postfix's own wording, which has the same words after the address.
RELAY_DENIED = "550 5.7.1 <{}>: Relay access denied"
SENDER_DENIED = "550 5.7.1 Relay access denied: sender not allowed to send SMS through this gateway"
# The relay port, to a client network some account lists, for a sender who is no user of such an
# account: a stranger, or a user of another account whose networks do not hold this address. It is
# one reply for both, and names no account: whoever sits in any customer's network must not learn
# which addresses are another company's users. What the client knows already (its address) and the
# two ways to fix it are enough for its admin; the log names the one that fits.
SENDER_NOT_HERE = (
    SENDER_DENIED + " from {ip}: the sender is no user of an account that relays from this address;"
    " the gateway's admin can add this address to the sender's account, or the sender to yours"
)
# The user was removed between MAIL, which let them through, and the end of DATA.
SENDER_GONE = "550 5.7.1 Relay access denied: sender no longer allowed to send SMS through this gateway"
NOT_TRUSTED = (
    "550 5.7.1 Relay access denied: client host not allowed to relay;"
    " use the submission port with authentication"
)
# RFC 5321 4.1.1.3: RCPT's forward-path is never null; <> is a syntax error, not a relay question.
BAD_RCPT_SYNTAX = "501 5.1.3 <{}>: Bad recipient address syntax"
TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
NO_VALID_RCPT = "554 5.5.1 No valid recipients"
# Over `[smtp] max_message_bytes` (SIZE= at MAIL, or the DATA): "exceeds fixed maximum message
# size" (aiosmtpd's) named no limit. What makes a mail that big is usually an attachment, never sent
# anyway, but it may be all text: the reply assumes neither. `{}` is the limit (`too_big`).
TOO_BIG = (
    "552 5.3.4 Mail over {} refused: an SMS carries only text (attachments are not sent); send a shorter mail"
)
EMPTY_TEXT = "554 5.6.0 Message has no text to send (empty subject and body)"
# No subject, and the HTML parts read held no text, but the mail had more than one mail's budget
# of HTML (`mimebody._html_text`): its text may be in the parts not read, so neither "empty" nor
# "only attachments" is true.
HTML_NOT_READ = (
    "554 5.6.0 Message has no text to send (no subject; the HTML parts read held none, and later"
    " HTML parts were not read: too many or too long)"
)
ONLY_QUOTE = (
    "554 5.6.0 Message has no text to send (no subject; the body held only quoted text or a signature)"
)
# The marker itself is not quoted: an account may set one that is not ASCII, and a reply line is.
ONLY_BELOW_END = (
    "554 5.6.0 Message has no text to send (no subject; the body began with the end marker line,"
    " and text below it is not sent)"
)
ONLY_ATTACHMENTS = "554 5.6.0 Message has no text to send (no subject; attachments are not sent as SMS)"
# An answer to a premium SMS is read without its subject (gateway/premium/intake.py): the phone gets
# the body alone. "No subject" was false of "RE: KP123 · 7355", and told the client a subject would do.
# `{}` is what else the mail held (`body_only`).
PREMIUM_NO_TEXT = (
    "554 5.6.0 Message has no text to send (an answer to a paid SMS sends its body only, and the body"
    " has no text{}): write the answer in the mail's body"
)
_NO_SUBJECT = "554 5.6.0 Message has no text to send (no subject; "
_BODY_ONLY = "554 5.6.0 Message has no text to send (an answer to a paid SMS sends its body only; "


def body_only(reply: str) -> str:
    """A refusal of a mail with no text, as true of one whose subject is never sent (an answer to a
    premium SMS): what the body held stays said; any other reply is returned as it is."""
    if reply == EMPTY_TEXT:
        return PREMIUM_NO_TEXT.format("")
    if reply == ONLY_ATTACHMENTS:
        return PREMIUM_NO_TEXT.format("; attachments are not sent as SMS")
    if reply.startswith(_NO_SUBJECT):  # the quote, the end marker, a cut-from phrase, HTML not read
        return _BODY_ONLY + reply[len(_NO_SUBJECT) :]
    return reply


ENCRYPTED = "554 5.6.0 Encrypted message (S/MIME or PGP) cannot be sent as SMS; send it unencrypted"
# Outlook's Encrypt / Do Not Forward (Microsoft Purview, IRM): the text is in message.rpmsg, which only
# the recipient's Microsoft account opens; what stands beside it is a "has sent you a protected
# message" notice, no text for a phone.
RIGHTS_PROTECTED = (
    "554 5.6.0 Rights-protected message (Outlook's Encrypt or Do Not Forward) cannot be read by the"
    " SMS gateway; send it without protection"
)
# Opaque S/MIME signing puts the text inside the signature; the gateway reads clear-signed mail only.
SIGNED_OPAQUE = (
    "554 5.6.0 Message signed in a form the SMS gateway cannot read (S/MIME opaque signing); in Outlook"
    " turn on 'Send clear text signed message', or send it unsigned"
)
UNREADABLE = "554 5.6.0 Message could not be read: {}"
# `headerbound`'s bounds, far past any mail client's (each formatted there with its number).
MANY_FIELDS = UNREADABLE.format("more than {} fields in one header")
MANY_PARAMS = UNREADABLE.format("more than {} parameters in a Content-Type or Content-Disposition")
MANY_WORDS = UNREADABLE.format("more than {} encoded words (=?...?=) in one header field")
# R-1.4's cap is the gateway's (max_parts), not an account's; what fits depends on the text's alphabet.
TOO_LONG = (
    "554 5.3.4 Text too long: {length} characters; the gateway sends at most {parts} SMS parts per mail,"
    " which hold the first {fits} characters of this text"
)
# Outlook's "Expires after" (`Expiry-Date:`; never `Expires:`) passed before the SMS could go (RFC 3463
# X.4.7, delivery time expired); the times in the gateway's zone.
EXPIRED = "554 5.4.7 Delivery time expired: the message's expiry date ({expiry}) is {why}; no SMS was sent"
# What lifts each refusal follows its words, and who listed the number: the phone's START (the first of
# `optin_words`) undoes its own STOP, `smsgw optout remove` any entry of the shared list (the operator's
# own ones only that way), and an account's admin their account's entry (the panel's Account page).
OPTED_OUT = (
    "550 5.7.1 <{}>: recipient has opted out of SMS from this gateway; {}the gateway's admin can"
    " remove it from the list (smsgw optout remove)"
)
OPTED_OUT_BY_OPERATOR = (
    "550 5.7.1 <{}>: recipient has opted out of SMS from this gateway, listed by the gateway's admin;"
    " only they can remove it from the list (smsgw optout remove)"
)
OPTED_OUT_BY_ACCOUNT = (
    "550 5.7.1 <{}>: recipient has opted out of SMS from this account, listed by the account's admin;"
    " ask them to remove it from the list (the panel's Account page)"
)
ALSO_BY_ACCOUNT = "; this account's admin listed it too (the panel's Account page)"


def opted_out(address: str, optin_words: list[str], by: tuple[str, ...] | list[str] = ("mo",)) -> str:
    """The opt-out refusal, saying who can lift it for whom listed the number (`PolicyRepo.optout_by`):
    the phone's START is offered only for its own STOP (none configured: the admin alone)."""
    if "admin" in by:
        said = OPTED_OUT_BY_OPERATOR.format(address)
    elif "mo" in by:
        phone = f"the phone can answer {optin_words[0]}, or " if optin_words else ""
        said = OPTED_OUT.format(address, phone)
    else:
        return OPTED_OUT_BY_ACCOUNT.format(address)
    return said + (ALSO_BY_ACCOUNT if "account" in by else "")


SUSPENDED = (
    "550 5.7.1 Account {} is suspended: {}; ask the gateway's admin to resume it (smsgw account resume)"
)

TEMP_FAILURE = "451 4.3.0 Temporary failure, please try again later"
STORE_FULL = "452 4.3.1 Insufficient system storage, please try again later"
QUEUE_FULL = "451 4.3.1 Queue is full, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
# The database stayed locked by another process (an admin command) past the wait bound.
STORE_BUSY = "451 4.3.0 Mail store busy, please try again later"
# The database file was deleted or replaced while open: the daemon stops to reopen it.
STORE_REPLACED = "451 4.3.0 Mail store unavailable, please try again later"

# Session limits (gateway/smtp/guard.py): each closes the connection after the reply.
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
IDLE_EVICTED = "421 4.7.0 Too many connections: closing this idle session, try again later"
TOO_MANY_CONNECTIONS_FROM_ADDRESS = "421 4.7.0 Too many connections from your address, try again later"
LINE_TOO_LONG = "421 4.7.0 Command line too long, closing connection"
TOO_MANY_COMMANDS = "421 4.7.0 Too many commands without a mail, closing connection"
IDLE_TIMEOUT = "421 4.4.2 Idle too long, closing connection"
# The idle time passed in a body where the client ended a "." line, or the line before it, with a bare LF:
# that is not the end of data (RFC 5321 4.1.1.4; read as one, it lets a mail smuggle another past the next
# hop, so it is waited past as Postfix does), and a client that writes its lines so waited for our answer
# till the timeout.
IDLE_BARE_LF_END = (
    "421 4.4.2 Idle too long, closing connection: end of data must be <CR><LF>.<CR><LF>;"
    ' a line "." ended or preceded by LF alone was seen'
)
# aiosmtpd closes a session after five unknown commands; it said 502, which a client reads as that
# command's failure, not as the channel closing (RFC 5321 3.8).
# Strangers' mail bodies held at once over the guard's budget (guard.STRANGER_DATA_BUDGET).
DATA_BUDGET = "421 4.3.1 Too much mail data in transit, try again later"
TOO_MANY_UNKNOWN = "421 4.7.0 Too many unrecognized commands, closing connection"
# A mail's body still arriving past the guard's bound (guard.DATA_SECONDS_MAX) from its 354.
DATA_TOO_SLOW = "421 4.4.2 Mail data took too long to arrive, closing connection"
# A stranger's body arriving below the guard's minimum rate (eviction.STRANGER_DATA_MIN_RATE).
DATA_TOO_SLOW_RATE = "421 4.4.2 Mail data arriving too slowly, closing connection"
# At the connection cap, a stranger's body in DATA that comes slowest gives way (gateway/smtp/eviction.py).
SLOW_DATA_EVICTED = "421 4.7.0 Too many connections: closing this slow mail transfer, try again later"

# Protocol errors the listeners answer themselves (the rest are aiosmtpd's texts, coded in relay.py).
TLS_ALREADY_ACTIVE = "503 5.5.1 TLS already active"
# STARTTLS while the port's handshakes under way are at their cap (servers.TLS_HANDSHAKES_MAX).
TLS_BUSY = "454 4.7.0 TLS not available due to temporary reason"
NON_ASCII = "501 5.5.4 Error: non-ASCII characters need SMTPUTF8, which this server does not offer"

# Submission port (RFC 3207 / RFC 4954). MUST_STARTTLS keeps RFC 3207's text: it also answers AUTH
# before STARTTLS, where "Authentication required" would tell the client the opposite of the fix.
# Outlook shows its user only the reply's text: each refusal a person can act on keeps the grep-able
# words admins know and then says, in one line, what to do.
MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"
AUTH_REQUIRED = "530 5.7.0 Authentication required"
# A session whose password was changed (or cleared) since it logged in (SubmissionHandler.handle_MAIL).
AUTH_PASSWORD_CHANGED = f"{AUTH_REQUIRED}: your password was changed; log in again with the new one"
AUTH_PASSWORD_REMOVED = f"{AUTH_REQUIRED}: your password was removed; ask the gateway's admin for a new one"
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_INVALID = (
    "535 5.7.8 Authentication credentials invalid"
    " (user name = your full email address; ask the gateway's admin for the password)"
)
AUTH_TEMP_FAILURE = "454 4.7.0 Temporary authentication failure"
# The lead words alone (the logs' and tests' handle); the reply is AUTH_LOCKED_FOR with the time left.
AUTH_LOCKED = "421 4.7.0 Too many failed authentications"
AUTH_LOCKED_FOR = (
    AUTH_LOCKED + ", locked for {minutes} more minute(s); the gateway's admin can lift the lock"
    " (smsgw auth unlock)"
)
ALREADY_AUTHENTICATED = "503 5.5.1 Already authenticated"
NOT_OWNED = (
    "550 5.7.1 Relay access denied: sender address not owned by the authenticated user;"
    " you may send only as <{}>"
)
# A recipient on no SMS domain, on the submission port: its user typed a mail address, not a number.
SMS_ONLY = RELAY_DENIED + "; this server sends only SMS, to <number>@{}"

# Premium answers and confirmations, accepted on the relay port from any network.
PREMIUM_UNKNOWN_ADDRESS = "550 5.1.1 <{}>: no such answer or confirmation address"
PREMIUM_ALONE = "452 4.5.3 An answer to a premium SMS goes in a mail of its own"
PREMIUM_NOT_ON_ACL = "550 5.7.1 <{}> may not answer this premium SMS (not on the service's reply list)"
PREMIUM_ANSWERED = "550 5.7.1 This premium SMS was answered {} time(s) already; no more free answers"
PREMIUM_TOO_OLD = "550 5.7.1 This premium SMS is older than {:g} days and can no longer be answered"
PREMIUM_SERVICE_GONE = "550 5.7.1 Premium service {} was removed; its SMS can no longer be answered"
# A confirmation of a removed service. Its password may have been added again since: the reply
# then must not tell the client that the service they now run was removed.
PREMIUM_CONFIRM_OF_REMOVED = "550 5.7.1 Premium service {} was removed; this confirmation confirms nothing"
PREMIUM_CONFIRM_OF_EARLIER = (
    "550 5.7.1 This confirmation is for an earlier premium service {0}, removed since;"
    " it confirms nothing for the {0} in use now"
)
PREMIUM_NOT_FORWARDED = "550 5.7.1 This premium SMS has not been mailed to its client yet"
PREMIUM_NO_ROUTE = "550 5.1.2 No SMSC link serves {}: this premium SMS cannot be answered by SMS"
PREMIUM_CONFIRMED = "250 2.0.0 OK: address confirmed for premium service {}, {} kept SMS mailed"
PREMIUM_ALREADY_CONFIRMED = "250 2.0.0 OK: address already confirmed for premium service {}"
PREMIUM_CONFIRM_EXPIRED = "550 5.7.1 This confirmation has expired; ask the operator to send a new one"
# One that `premium verify --resend` replaced: "ask for a new one" sent the client to the operator
# for the mail that was already in their inbox.
PREMIUM_CONFIRM_REPLACED = (
    "550 5.7.1 This confirmation was replaced by a newer confirmation mail: answer the newest one"
)
# A confirmation whose subject alone reads as a responder's (an out-of-office word beside it): refused
# aloud, not recorded in silence: a person who wrote "out of office from Monday" beside it hears why
# (a responder's bounce of it goes to its empty envelope sender: nowhere).
PREMIUM_CONFIRM_LOOKS_AUTOMATIC = (
    "550 5.7.1 This looks like an automatic reply (an out-of-office word beside the confirmation's subject),"
    " so it confirms nothing: to confirm premium service {}, answer the confirmation with another subject"
)
PREMIUM_CONFIRM_STALE = "550 5.7.1 This confirmation is for an address premium service {} no longer uses"
# RFC 5321 4.5.1: postmaster's mail is forwarded to the admin address (gateway/smtp/postmaster.py);
# the notice sender address takes bounces only, and a person answering a notice learns where to write.
# Its role named: postmaster or abuse (`postmaster.role`).
POSTMASTER_ALONE = "452 4.5.3 A mail to {} goes in a mail of its own"
NOTICES_ONLY = (
    "550 5.7.1 <{}>: this address only sends the SMS gateway's notices and takes no mail;"
    " write to {} (the gateway's administrator)"
)
# The relay port has no logins (R-2.1 b: the client's network and an ACL'd sender are its identity).
AUTH_NOT_OFFERED = "502 5.5.1 AUTH not available on this port; mail clients log in on the submission port"

# A sender whose address is not ASCII: users are ASCII addresses, so no user sent it.
SENDER_NOT_ASCII = f"{SENDER_DENIED} (its users have ASCII addresses only)"
# `smsgw account set --countries`: a number of another country than the account's ones
OUTSIDE_COUNTRIES = (
    "550 5.7.1 <{address}>: {number} is a number of {region}; this account sends SMS only to numbers"
    " of {countries} (smsgw account set {account} --countries)"
)


def too_big(limit: int) -> str:
    """`TOO_BIG` for a limit of `limit` bytes in decimal units rounded down, so that the limit said
    is never more than the real one: "1 MB" for 1,048,576 and for 1,000,000, "1.5 MB" for 1,530,000,
    "512 KB" for 512,000."""
    for unit, size in (("MB", 1_000_000), ("KB", 1_000)):
        if limit >= size:
            tenths = limit * 10 // size
            return TOO_BIG.format(f"{tenths // 10}{f'.{tenths % 10}' if tenths % 10 else ''} {unit}")
    return TOO_BIG.format(f"{limit} bytes")
