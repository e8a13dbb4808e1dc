"""The submission port's identity: who logged in, and the envelope sender that must be their own.

The login is checked against a slow salted hash off the event loop, with the same 535 for an unknown
user and a wrong password; a session's MAIL then finds its user still there, its password unchanged
since the login, its address the sender's and its account not suspended. RCPT and DATA are the relay
port's hooks (`gateway.smtp.relay.RelayHandler`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import structlog
from aiosmtpd.smtp import AuthResult, Envelope, Session

from acl.accounts import without_batv
from acl.logins import masked_login
from acl.passwords import off_loop, password_stamp, verify_password
from gateway.smtp import replies
from gateway.smtp.gate import Sender
from gateway.smtp.relay import RelayHandler
from gateway.smtp.replies import AUTH_INVALID, AUTH_OK, AUTH_REQUIRED, NOT_OWNED

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Identity:
    """What a successful AUTH leaves in `session.auth_data`: the user as found at login time.

    `stamp` is the `password_stamp` of the password it logged in with: a session kept open (a mail
    client holds one for hours) stops sending once the password is changed or cleared.
    """

    login: str
    user_id: int
    stamp: str


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(address: str) -> str:
    """The address with A-Z lowered and nothing else: addresses differ in ASCII case only.

    `casefold()` (and `lower()`) also turn look-alikes into ASCII letters, the Kelvin sign U+212A
    into k: such a MAIL FROM (SMTPUTF8) passed as the login's own address and was recorded under
    an address that is no user's."""
    return address.translate(_ASCII_LOWER)


def _normal(login: bytes) -> str:
    """A login as `authenticate` reads it (UTF-8, spaces around dropped), ASCII case aside."""
    return _ascii_lower(login.decode("utf-8", "surrogateescape").strip())


def _peer_ip(session: Session | None) -> str | None:
    peer = session.peer if session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class SubmissionHandler(RelayHandler):
    """The relay port's hooks, with the sender identity taken from the login instead of the network."""

    async def authenticate(
        self, session: Session, mechanism: str, login: bytes, password: bytes, *, refuse: str | None = None
    ) -> AuthResult:
        """Check a login and password; the same 535 for an unknown user and a wrong password.

        `refuse` fails the login whatever the password, logged with that reason (an AUTH PLAIN
        authzid naming another identity): the hash still runs, so the answer and its time are those
        of any failure, and the log names what actually happened instead of an "unknown user".
        """
        try:
            email = login.decode("utf-8").strip()
        except UnicodeDecodeError:
            email = ""
        user = self.gate.store.accounts.find_user(email) if email else None
        secret = password.decode("utf-8", "surrogateescape")
        stored = user.password_hash if user is not None else None
        # Always run the hash, also without a user or password, so the reply time tells nothing.
        ok = await off_loop(verify_password, secret, stored)
        ip = _peer_ip(session)
        if not ok or user is None or refuse is not None:
            reason = refuse or (
                "unknown user" if user is None else "no password set" if stored is None else "wrong password"
            )
            # Only a user's address is logged as typed: anything else may be a password typed into
            # the user-name field.
            shown = user.email if user is not None else masked_login(login.decode("utf-8", "surrogateescape"))
            log.info("submission.auth_failed", ip=ip, login=shown, mechanism=mechanism, reason=reason)
            return AuthResult(success=False, handled=False, message=AUTH_INVALID)
        log.info("submission.auth_ok", ip=ip, login=user.email, mechanism=mechanism)
        identity = Identity(user.email, user.id, password_stamp(user.password_hash))
        return AuthResult(success=True, auth_data=identity, message=AUTH_OK)

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.gate.closing:
            return replies.SHUTTING_DOWN
        identity = session.auth_data
        if not session.authenticated or not isinstance(identity, Identity):
            return AUTH_REQUIRED  # aiosmtpd checks this first; kept so the rule does not depend on it
        store = self.gate.store
        ip = _peer_ip(session)
        user = store.accounts.find_user(identity.login)
        if user is None or user.id != identity.user_id:
            log.info(
                "submission.sender_refused", ip=ip, login=identity.login, reason="user removed since login"
            )
            return replies.SENDER_DENIED
        if not hmac.compare_digest(identity.stamp, password_stamp(user.password_hash)):
            # A new password (or none) since this session logged in: whoever changed it meant to
            # shut out whoever knew the old one. The session may log in again with the new one.
            log.info(
                "submission.sender_refused", ip=ip, login=user.email, reason="password changed since login"
            )
            session.authenticated = False
            session.auth_data = None
            return (
                replies.AUTH_PASSWORD_REMOVED if user.password_hash is None else replies.AUTH_PASSWORD_CHANGED
            )
        # A BATV tag (`prvs=0123abcdef=anna@acme.example`) is the user's own address as their
        # company's outbound server signs it, read as the relay port reads it; the domain stays, so
        # a tag on another user's address is that user's address, refused below.
        untagged = without_batv(address)
        if _ascii_lower(untagged) != _ascii_lower(user.email):
            # Stalwart's mustMatchSender: a login may only send as itself, or any user could
            # spend another user's quota and receive their replies.
            log.info("submission.sender_refused", ip=ip, login=user.email, sender=address, reason="not owned")
            return NOT_OWNED.format(user.email)
        account = store.accounts.account_by_id(user.account_id)
        if account.suspended_at:
            log.info("submission.sender_refused", ip=ip, login=user.email, reason="account suspended")
            return replies.SUSPENDED.format(account.name, account.suspended_reason or "ask your admin")
        # Recorded as the user's address as stored, however the client cased it: `queue list
        # --user`, the answers and the notices find the mail by that address.
        envelope.mail_from = user.email
        envelope.mail_options.extend(mail_options)
        # DSNs go to the tagged address as received: the server that signed it refuses a bounce
        # to the plain one.
        tagged = address if untagged != address else None
        envelope.smsgw = Sender(user.email, account, user, envelope=tagged)  # type: ignore[attr-defined]
        return replies.OK_SENDER

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """The relay port's RCPT; its refusal of a recipient on no SMS domain also says what is.

        A relay port's client is an MTA; here it is a person who typed a mail address into Outlook.
        """
        answer = await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        domains = self.gate.config.gateway.domains
        if domains and answer == replies.RELAY_DENIED.format(address):
            return replies.SMS_ONLY.format(address, " or <number>@".join(domains[:3]))
        return answer
