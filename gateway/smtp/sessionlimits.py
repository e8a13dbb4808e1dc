"""The sizes and times `gateway.smtp.guard` holds every SMTP session to, each with the reason for its value.

Apart from the guard because they are the limits' values and their reasons (which the replies that
tell them cite), while the guard is the machinery that counts and closes; the guard imports them, so
`guard.COMMAND_LINE_CAP` and the rest still resolve.
"""

from __future__ import annotations

# RFC 5321 4.5.3.1.4 allows 512 octets per command line (aiosmtpd checks that once a line is in);
# RFC 4954 4 raises it to 12288 for AUTH and its responses, so that is what may be buffered.
COMMAND_LINE_CAP = 12288
# RCPT lines are counted apart from the other commands: a client that puts 300 recipients in one
# transaction hears 452 past the relay's 100 (RFC 5321 4.5.3.1.10) and sends the rest in the next,
# but counted with NOOPs its 248th RCPT closed the session and the 100 taken were lost with it.
# Postfix takes 1,000 recipients per transaction (smtpd_recipient_limit) and counts the rest.
RCPT_LINES_CAP = 2000
# A mail's body may take this long from the 354, however it trickles in (each piece moves the idle
# deadline, so a slow uplink is not cut while it sends): RFC 5321 4.5.3.2.6 gives the client 10 minutes
# to wait for the end of DATA, and 1 MiB in that time is 1.7 kB/s. Without a bound a byte every few
# minutes would hold a slot for ever (only a stranger's may give way at the cap: `eviction`).
DATA_SECONDS_MAX = 600.0
# The body bytes that sessions without an account (a stranger's mail to postmaster or answer to a
# premium SMS, a bounce) may hold at once, all together: past it, the session whose bytes went over
# hears 421 4.3.1 and is closed (its client tries again later). MAIL lets anyone through once premium
# numbers are configured, and each stranger in DATA held up to ~2.5 times `max_message_bytes`
# (reader buffer and body), so 500 of them held over a gigabyte. A smaller size limit for them would
# refuse a real answer carrying a quoted HTML mail and a logo; a budget only bites under such a flood.
# Accounts' sessions (logged in, or a customer network's ACL'd sender) are never counted or cut.
STRANGER_DATA_BUDGET = 64 * 1024 * 1024
