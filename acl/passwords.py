"""Password hashing for submission logins: salted scrypt in a self-describing string, constant-time checks.

The stored form `scrypt$n=16384,r=8,p=1$<salt b64>$<hash b64>` carries its own cost parameters so
that they can be raised later without invalidating existing hashes. Verification is deliberately
slow (about 50 ms, 16 MiB) and takes the same path for an unknown user, a user without a password
and a garbled row, so that the reply time does not tell an attacker which accounts exist. Callers
on the event loop run it through `off_loop`, on this module's own pool of two threads.

A password that is not UTF-8 is also tried as the same bytes read in the legacy code pages of
`LEGACY_CODEPAGES`: mail clients send credentials in the machine's code page when the server
announces no UTF-8 (MailKit does), so the owner of "Zażółć" on Polish Windows sent it in cp1250,
was refused, and locked themself out with the right password. Each reading costs one more scrypt,
on every path alike; a UTF-8 password (anything a browser posts) costs one as before.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")

SCHEME = "scrypt"
N, R, P = 16384, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds on the parameters read back from the database: a tampered or corrupt row must not be
# able to make one login burn gigabytes of memory or minutes of CPU.
_MAX_N, _MAX_R, _MAX_P = 1 << 20, 32, 16
_MAXMEM = 256 * 1024 * 1024

# One pool for every password check and hash of the daemon (submission AUTH, panel login, password
# change): each scrypt holds 16 MiB while it runs, and asyncio's default pool (up to 32 threads)
# let a login flood on the panel hold 512 MiB at once. Two threads bound memory and CPU; logins
# wait their turn behind each other, not behind the daemon's other thread work.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smsgw-passwords")


@dataclass(frozen=True, slots=True)
class _Params:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


# Used when there is nothing real to compare against, so that the failure costs as much as a
# genuine check (the salt is fixed; nothing can ever match because the digest is random).
_DUMMY = _Params(N, R, P, b"\0" * SALT_BYTES, os.urandom(HASH_BYTES))

# Polish Windows (its ANSI code page), Polish Unix set-ups, Western Windows: the code pages a
# password from this gateway's users arrives in when it is not UTF-8.
LEGACY_CODEPAGES = ("cp1250", "iso-8859-2", "cp1252")


def _encode(pw: str) -> bytes:
    # SASLprep (RFC 4013, used by PLAIN) is close to NFKC; normalising both at set and check time
    # lets a password typed with composed or decomposed accents on different clients still match.
    # surrogateescape keeps undecodable bytes from the network as they were instead of raising.
    # A surrogate it cannot map back (a form decoded with an odd charset can yield "\ud800") is
    # kept by surrogatepass: raising here skipped the dummy check, and the 500 an unknown user
    # then got against the 401 of a known one told which logins exist.
    text = unicodedata.normalize("NFKC", pw)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _readings(pw: str) -> list[bytes]:
    """The forms `pw` is checked in: as given, and, when it carries undecodable bytes, those bytes
    read in each legacy code page (one that leaves a byte undefined cannot be what was typed).

    Depends on `pw` alone, never on the stored hash, so every path runs as many scrypts."""
    forms = [_encode(pw)]
    if not any("\udc80" <= ch <= "\udcff" for ch in pw):
        return forms
    try:
        raw = pw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # other surrogates besides: not bytes off the wire
        return forms
    for codepage in LEGACY_CODEPAGES:
        try:
            form = _encode(raw.decode(codepage))
        except UnicodeDecodeError:
            continue
        if form not in forms:
            forms.append(form)
    return forms


def _scrypt(pw: bytes, p: _Params) -> bytes:
    return hashlib.scrypt(pw, salt=p.salt, n=p.n, r=p.r, p=p.p, maxmem=_MAXMEM, dklen=len(p.digest))


def hash_password(pw: str) -> str:
    """A new salted hash of `pw` in the stored string form."""
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.scrypt(_encode(pw), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=HASH_BYTES)
    b64 = base64.b64encode
    return f"{SCHEME}$n={N},r={R},p={P}${b64(salt).decode()}${b64(digest).decode()}"


def _parse(stored: str) -> _Params | None:
    try:
        scheme, params, salt_b64, digest_b64 = stored.split("$")
        if scheme != SCHEME:
            return None
        fields = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(fields["n"]), int(fields["r"]), int(fields["p"])
        salt = base64.b64decode(salt_b64, validate=True)
        digest = base64.b64decode(digest_b64, validate=True)
    except (ValueError, KeyError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return None
    if not salt or not 16 <= len(digest) <= 64:
        return None
    return _Params(n, r, p, salt, digest)


def verify_password(pw: str, stored: str | None) -> bool:
    """True when `pw` matches `stored`; False for a mismatch, a missing or an unreadable hash.

    Never raises on the text of `pw`. Every reading of `pw` is hashed on every path, a match or
    not, so that an unknown user costs what a known one does for the same input."""
    params = _parse(stored) if stored else None
    target = params or _DUMMY  # nothing real to compare against: fail after the same work
    matched = False
    for form in _readings(pw):
        try:
            candidate = _scrypt(form, target)
        except (ValueError, MemoryError):
            # Parameters within the bounds can still exceed what OpenSSL accepts on this machine.
            return False
        matched |= hmac.compare_digest(candidate, target.digest)
    return matched and params is not None


def is_password_hash(stored: str | None) -> bool:
    """Whether `stored` is a hash this module can check (for admin listings and sanity checks)."""
    return bool(stored) and _parse(stored or "") is not None


def password_stamp(password_hash: str | None) -> str:
    """A digest of the stored hash: a login kept open (a panel session, an SMTP session after AUTH)
    notices a new password, or none, without keeping the hash itself."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


async def off_loop(fn: Callable[..., _T], *args: object) -> _T:
    """`fn(*args)` on the password pool: for the event loop's checks, hashes and the helpers
    that run one (such as checking a written initial password)."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn, *args)
