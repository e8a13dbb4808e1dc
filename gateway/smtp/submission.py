"""The submission listener: mail clients such as Outlook log in with SMTP AUTH after STARTTLS.

It owns the rules of that port (SPEC R-2.1 a, RELIABILITY F12): nothing but EHLO/STARTTLS/NOOP/QUIT
before TLS, AUTH PLAIN and LOGIN only after it, the login is the user's email address checked
against a slow salted hash off the event loop, lockouts per (address, login), per address, per
login and overall after repeated failures (acl/lockout.py), and an envelope sender that must be
the logged-in user's own address. RCPT and DATA are the relay port's hooks unchanged, so both
ways in produce the same SMS from the same mail. The login's identity and the sender rules are
`gateway.smtp.submitter`'s; the protocol, the mechanisms and the lockouts are here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets
from typing import Any, ClassVar

import structlog
from aiosmtpd.smtp import MISSING, AuthResult, _Missing, syntax
from aiosmtpd.smtp import log as aiosmtpd_log

from acl.lockout import Attempt, AuthGuard, Lockout, Refused
from acl.logins import masked_login
from acl.passwords import password_stamp
from gateway.logging import filter_once
from gateway.peeraddr import server_address
from gateway.smtp.gate import Gate
from gateway.smtp.replies import (
    ALREADY_AUTHENTICATED,
    AUTH_INVALID,
    AUTH_LOCKED_FOR,
    AUTH_TEMP_FAILURE,
    MUST_STARTTLS,
)
from gateway.smtp.servers import GatewaySMTP
from gateway.smtp.submitter import SubmissionHandler, _normal, _peer_ip
from gateway.store.accounts import User
from gateway.tlscert import tls_context

log = structlog.get_logger(__name__)

MECHANISMS = ("PLAIN", "LOGIN")  # what Outlook and every other mail client offer


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning on every successful AUTH; it says nothing to an admin."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def _refuse_sync(*_args: Any) -> AuthResult:
    """The `authenticator` aiosmtpd would call synchronously; SubmissionSMTP never lets it.

    Checking a scrypt hash inside it would stall every session, so the real check is the awaited
    `SubmissionHandler.authenticate`. Should aiosmtpd ever reach this, the login fails closed.
    """
    return AuthResult(success=False, handled=False, message=AUTH_TEMP_FAILURE)


class SubmissionSMTP(GatewaySMTP):
    """aiosmtpd's server with awaited logins, case-blind mechanism names and the login lockouts."""

    _REWRITE: ClassVar[dict[str, str]] = {
        **GatewaySMTP._REWRITE,
        "530 Must issue a STARTTLS command first": MUST_STARTTLS,
        "503 Already authenticated": ALREADY_AUTHENTICATED,
    }

    # What Postfix and Exchange send; aiosmtpd's "User Name\0" is legal but unusual for old clients.
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: SubmissionHandler, *, auth_guard: AuthGuard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.submission = handler
        self.auth_guard = auth_guard
        # The session's last failed login and password, as a keyed digest only (`_pair_digest`):
        # smtplib and Thunderbird-style clients retry a refused PLAIN with LOGIN, the same typo,
        # which counted twice and locked a user at the second typo instead of the third.
        self._digest_key = secrets.token_bytes(32)
        self._last_failed: bytes | None = None

    async def _lock_out(self, seconds: float) -> None:
        """Refuse with the time the lock has left, and close: the user learns when to try again and
        that the admin can lift it, instead of retrying the right password into a longer lock."""
        await self.push(AUTH_LOCKED_FOR.format(minutes=max(1, math.ceil(seconds / 60))))
        # The 421 closed the channel (`GuardedSMTP.push`); a TLS channel closed twice drops its
        # protocol, and every later write to it raised AttributeError.
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        # Mechanism names are case-insensitive (RFC 4954); aiosmtpd 1.4 answers 504 to `auth login` (#305).
        if arg:
            mechanism, sep, rest = arg.strip().partition(" ")
            arg = mechanism.upper() + sep + rest
        # A locked address is refused in `_check`, once the login is known, not here nor at the
        # greeting: a login that succeeded from it lately passes its lock (acl/lockout.py), and an
        # office behind one NAT whose colleagues' stale passwords reached the address's cap was
        # refused whole at connect, those who had just logged in included.
        await super().smtp_AUTH(arg)

    async def challenge_auth(
        self, challenge: str | bytes, encode_to_b64: bool = True, log_client_response: bool = False
    ) -> _Missing | bytes:
        """aiosmtpd's (1.4.6), but an answer whose line never ended is none: MISSING, and nothing
        checked or counted. A line over the 12,288-octet cap ends the input where it starts
        (`closing`), and aiosmtpd read the empty rest as the answer: an empty password, checked,
        answered 535 and counted as the user's wrong password (three locked the user out at that
        address) before the cap's 421; at the user-name prompt, the password prompt came first."""
        if isinstance(challenge, str):
            challenge = challenge.encode()
        await self.push(b"334 " + (base64.b64encode(challenge) if encode_to_b64 else challenge))
        line = await self._reader.readline()
        if not line.endswith(b"\n"):  # the input's end came first: the session closes (`closing`)
            return MISSING
        blob = line.strip()
        if blob == b"*":  # RFC 4954 4: the client cancels the exchange
            assert self.session is not None
            aiosmtpd_log.warning("%r aborted AUTH with '*'", self.session.peer)  # aiosmtpd's line, as it was
            await self.push("501 5.7.0 Auth aborted")
            return MISSING
        try:
            return base64.b64decode(blob, validate=True)
        except binascii.Error:
            await self.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await self.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            blob = self._b64(args[1])
            if blob is None:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(blob, bytes)
        if not blob:  # an empty response (`AUTH PLAIN =`): no login and no password, a wrong one
            return await self._check("PLAIN", b"", b"")
        pieces = blob.split(b"\0")
        if len(pieces) != 3:
            await self.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        authzid, login, password = pieces
        if authzid and _normal(authzid) != _normal(login):
            # Acting for another identity (RFC 4616 authzid) is not something users may do here.
            # The same identity in other case or with spaces (as the login itself may be typed) is
            # the login's own.
            return await self._check("PLAIN", login, password, refuse="authzid names another identity")
        return await self._check("PLAIN", login, password)

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth(self.AuthLoginUsernameChallenge)
        else:
            login = self._b64(args[1])
            if login is None:
                await self.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        if login is MISSING:
            return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        assert isinstance(login, bytes) and isinstance(password, bytes)
        return await self._check("LOGIN", login, password)

    @staticmethod
    def _b64(text: str) -> bytes | None:
        if text == "=":  # an empty initial response (RFC 4954 4): "=" is not base64 of anything
            return b""
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return None

    def _who(self, login: bytes) -> tuple[str, bool, User | None]:
        """The login as logs and the lock list may show it, whether it names a user, and that user.

        Only a user's address is shown as typed: anything else may be a password typed into the
        user-name field (`@` included), so it is shown masked, in a way that still tells one
        run's attempts apart.
        """
        try:
            email = login.decode("utf-8").strip()
            user = self.submission.gate.store.accounts.find_user(email) if email else None
        except Exception:  # not UTF-8, or a database fault (the check itself reports that one)
            user = None
        if user is None:
            return masked_login(login.decode("utf-8", "surrogateescape")), False, None
        return user.email, True, user

    def _pair_digest(self, login: bytes, password: bytes, user: User | None) -> bytes:
        """A keyed digest of the login, the password and the user's stored hash as now.

        The key is this session's own and random, so the digest tells nothing outside it and the
        password itself is never kept. The stored hash's stamp is in it so that a password the
        admin set since the failure (perhaps to what was typed) is checked, not taken for a repeat.
        """
        stamp = password_stamp(user.password_hash) if user is not None else ""
        mac = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        for piece in (login, password, stamp.encode()):
            mac.update(len(piece).to_bytes(8, "big") + piece)
        return mac.digest()

    async def _check(
        self, mechanism: str, login: bytes, password: bytes, *, refuse: str | None = None
    ) -> AuthResult:
        assert self.session is not None
        ip = _peer_ip(self.session)
        shown, known, user = self._who(login)
        # The guess is counted before the password is looked at: a locked login (or address) gets
        # the same answer whether the password was right or not, and parallel sessions cannot
        # have more guesses checked than the limit allows.
        # Parallel sessions of one login (a connection pool, PCs behind one NAT) wait here for
        # the checks in flight instead of being told they failed too often.
        attempt = await self.auth_guard.begin_waiting(ip, login.decode("utf-8", "surrogateescape"))
        if not isinstance(attempt, Attempt):
            self.guard.bite("auth", ip=ip, login=shown, reason=attempt.value)
            if attempt in (Refused.OVERALL, Refused.BUSY):
                # No lock of this client: the gateway sees a flood of failures and this address
                # has failed lately (or the queue for fresh ones is full), or the checks in flight
                # for this login or address did not end in time. Later, not never.
                return AuthResult(success=False, handled=False, message=AUTH_TEMP_FAILURE)
            await self._lock_out(self._locked_for(attempt, ip, login))
            return AuthResult(success=False, handled=True)
        # An authzid refusal fails whatever the password: the same pair by LOGIN may be right.
        digest = self._pair_digest(login, password, user) if refuse is None else None
        if (
            digest is not None
            and self._last_failed is not None
            and hmac.compare_digest(digest, self._last_failed)
        ):
            # The client retrying the pair that just failed, by another mechanism (or again): no new
            # guess, so it is not counted, and the answer is known without running the hash. The
            # locks were checked above as for any attempt; a different password counts as always.
            self.auth_guard.cancel(attempt)
            log.debug("submission.auth_repeated", ip=ip, login=shown, mechanism=mechanism)
            return AuthResult(success=False, handled=False, message=AUTH_INVALID)
        if attempt.delay > 0:  # its turn in the queue while the overall rate is exceeded
            try:
                await asyncio.sleep(attempt.delay)
            except asyncio.CancelledError:
                self.auth_guard.cancel(attempt)  # hung up before anything was checked
                raise
        check = asyncio.ensure_future(
            self.submission.authenticate(self.session, mechanism, login, password, refuse=refuse)
        )
        try:
            result = await asyncio.shield(check)
        except asyncio.CancelledError:
            # The client hung up (aiosmtpd cancels the session) while the hash ran. The check goes
            # on in the pool all the same, so its outcome is recorded when it comes: dropped, its
            # reservation would be held for ever, and ten such hang-ups would lock a login at
            # every address until a restart, with nothing in `smsgw auth list` to unlock.
            check.add_done_callback(lambda done: self._settle_late(attempt, done, ip, shown, known))
            raise
        except Exception as exc:
            # A database fault is ours, not the user's: a temporary failure, not counted against them.
            self.auth_guard.cancel(attempt)
            log.error("submission.auth_error", ip=ip, error=repr(exc))
            return AuthResult(success=False, handled=False, message=AUTH_TEMP_FAILURE)
        lockout = self.auth_guard.settle(attempt, bool(result.success), known=known)
        self._last_failed = None if result.success else digest
        if lockout is not None:  # only a failure locks
            _log_lockout(ip, shown, lockout)
            await self._lock_out(lockout.seconds)
            return AuthResult(success=False, handled=True)
        return result

    def _locked_for(self, refused: Refused, ip: str | None, login: bytes) -> float:
        """Seconds left of the lock that refused this attempt (the pair's, the address's, the login's)."""
        who = login.decode("utf-8", "surrogateescape")
        if refused is Refused.PAIR:
            return self.auth_guard.pair_locked_for(ip, who)
        if refused is Refused.ADDRESS:
            return self.auth_guard.address_locked_for(ip)
        return self.auth_guard.login_locked_for(who)

    def _settle_late(
        self, attempt: Attempt, done: asyncio.Future[AuthResult], ip: str | None, shown: str, known: bool
    ) -> None:
        if done.cancelled() or done.exception() is not None:
            self.auth_guard.cancel(attempt)
            return
        lockout = self.auth_guard.settle(attempt, bool(done.result().success), known=known)
        if lockout is not None:
            _log_lockout(ip, shown, lockout)


def _log_lockout(ip: str | None, shown: str, lockout: Lockout) -> None:
    log.warning(
        "submission.locked_out",
        ip=ip,
        login=shown,
        pair_locked=lockout.pair,
        address_locked=lockout.address,
        login_locked=lockout.login,
        seconds=round(lockout.seconds),
    )


async def start(gate: Gate) -> asyncio.Server | None:
    """Start the submission listener, or return None when it is not configured."""
    cfg = gate.config
    smtp = cfg.smtp
    addr = smtp.submission_addr
    if addr is None:
        return None
    if smtp.tls_cert_file is None or smtp.tls_key_file is None:
        log.warning("submission.disabled", reason="[smtp] tls_cert_file and tls_key_file are not set")
        return None
    context = tls_context(cfg.path(smtp.tls_cert_file), cfg.path(smtp.tls_key_file))
    handler = SubmissionHandler(gate)
    filter_once("mail.log", _DropLoginDataNotice)
    loop = asyncio.get_running_loop()
    # Mechanisms are named after auth_* members; keep only the ones every client offers.
    named = {m.replace("auth_", "").replace("__", "-") for m in dir(SubmissionSMTP) if m.startswith("auth_")}
    unwanted = sorted(named - set(MECHANISMS))

    # start_smtp_server cannot choose the server class, so the same settings are passed here.
    def factory() -> SubmissionSMTP:
        return SubmissionSMTP(
            handler,
            auth_guard=gate.auth,
            guard=gate.sessions,
            hostname=cfg.gateway.hostname,
            ident="smsgw",
            data_size_limit=smtp.max_message_bytes,
            timeout=smtp.timeout_seconds,
            loop=loop,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_refuse_sync,
            auth_exclude_mechanism=unwanted,
        )

    host, port = addr
    hosts, port = server_address(host, port)  # "::" takes both stacks, IPv4 clients as IPv4
    server = await loop.create_server(factory, host=hosts, port=port)
    log.info("submission.listening", address=f"{host}:{server.sockets[0].getsockname()[1]}")
    return server
