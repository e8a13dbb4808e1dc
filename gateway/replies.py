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
RELAY_DENIED = "550 5.7.1 <{}>: Relay access denied"
SENDER_DENIED = "550 5.7.1 Sender not allowed to send SMS through this gateway"
NOT_TRUSTED = "550 5.7.1 Client host not allowed to relay; use the submission port with authentication"
TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
NO_VALID_RCPT = "554 5.5.1 No valid recipients"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
EMPTY_TEXT = "554 5.6.0 Message has no text to send (empty subject and body)"
TOO_LONG = "554 5.3.4 Text needs {} SMS parts; this account allows at most {}"
OPTED_OUT = "550 5.7.1 <{}>: recipient has opted out of SMS from this gateway"
SUSPENDED = "550 5.7.1 Account {} is suspended: {}"

TEMP_FAILURE = "451 4.3.0 Temporary failure, please try again later"
STORE_FULL = "452 4.3.1 Insufficient system storage, please try again later"
QUEUE_FULL = "452 4.3.1 Queue is full, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
