"""The SMSC's answer to our login (51, or a 98) read as taken or refused, and what of its free words
(901) the journal and `smsgw status` may show. Kept out of `link.py`, which owns the conversation.

An SMSC's 901 is its own prose: it may quote a phone number (an account's MSISDN) and, as one did,
the password it was sent ("user foo password s3cret busy"). The journal gets it without numbers
(`without_numbers`), and neither the journal, `smsgw status` nor a part's stored reason (which a
bounce quotes to the sender) gets the configured password. The user identity is no secret (the
config and the bind lines name it) and stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import structlog

from smsc.base import SubmitResult
from smsc.cimd2.codes import FATAL_LOGIN_ERRORS, LOGIN_REFUSALS, error_text, login_check
from smsc.cimd2.packet import Op, P, Packet
from smsc.numbermask import without_numbers
from smsc.settings import LinkSettings

log = structlog.get_logger(__name__)

HIDDEN = "<password>"  # what the SMSC's words show in place of the password
CODE_SHOWN = 16  # characters of a 900 that is no number the refusal quotes
# The start of the password masked as a word: where the text ends (a 901 cut at its 64 characters), and
# where a word ends ("wrong password S3cretPw." for "S3cretPw1x", "'S3cretPw' for smsc01"); shorter
# ones are too likely the SMSC's own words. Not where a word ends when that word is the user name or all
# letters: a password starting with the user name ("smsc01pass") hid the user name ("user <password>
# not allowed"), and "Access2024" made "Access denied" "<password> denied", telling the operator the
# password was echoed when it was not, and what it starts with.
PREFIX_SHOWN = 4
# A password key and the value after it ("pw=s3cr", "password: s3cret"): what the SMSC echoes there is
# the password, or the one it was sent by mistake.
_KEYED = re.compile(r"(?i)(\b(?:pw|pwd|pass|passwd|password)\s*[=:]\s*)([^\s,;]+)")


def without_password(text: str | None, password: str, user: str = "") -> str:
    """`text` with every occurrence of the configured password replaced by `HIDDEN`; and the start of
    it, PREFIX_SHOWN characters or more, as a word: one that ends the text (a 901 cut short at its 64
    characters, "... denied for S3cr", kept all but the cut characters), or any word but `user` (the
    system_id) or one of letters only (PREFIX_SHOWN); and whatever follows a password key ("pw=",
    "password:"), the SMSC's echo of what it was sent, whole or not."""
    text = text or ""
    if password:
        text = text.replace(password, HIDDEN)
        for length in range(len(password) - 1, PREFIX_SHOWN - 1, -1):
            start = password[:length]
            own_word = start.isalpha() or start.casefold() == user.casefold()  # maybe the SMSC's
            ends = r"(?=\s*\Z)" if own_word else r"(?![^\W_])"
            text = re.sub(rf"(?<![^\W_]){re.escape(start)}{ends}", HIDDEN, text)
    return _KEYED.sub(lambda m: m.group(1) + HIDDEN if m.group(2) != HIDDEN else m.group(0), text)


def result_without_password(result: SubmitResult, password: str, user: str = "") -> SubmitResult:
    """A submit's result whose reason (the SMSC's 901, kept by the part and quoted in a bounce) does
    not show the password (`user`: the system_id, `without_password`)."""
    if not result.error or (shown := without_password(result.error, password, user)) == result.error:
        return result
    return replace(result, error=shown)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A login the SMSC did not take. `code` is None when its 900 is no number (`900:E100`)."""

    code: int | None
    text: str

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_LOGIN_ERRORS


def login_refusal(resp: Packet) -> Refusal | None:
    """None when the SMSC took the login; else why not. A 51 whose 900 is no number (`900:E100`,
    `901:invalid login`) refuses as a 53 with one does (`messages.submit_result`): read as no code,
    it was taken for a login that worked, and every submit then went to an SMSC that had not let us
    in. Its meaning unknown, it is no fatal refusal: the link tries again after its back-off."""
    code, given = resp.get_int(P.ERROR_CODE), (resp.get(P.ERROR_CODE) or "").strip()
    said = resp.get(P.ERROR_TEXT)
    if code is None and given:
        shown = without_numbers(given[:CODE_SHOWN])
        return Refusal(None, f"unreadable error code 900 {shown!r}: {said or 'no 901 text'}")
    if resp.op != Op.LOGIN_RESP:
        code = code or 1  # a 98 to our login: the SMSC did not take it
    if not code:
        return None
    return Refusal(code, said or error_text(code))


def report_refusal(cfg: LinkSettings, refusal: Refusal, password: str, key: str) -> str:
    """Log the refusal and return the link's last error (`LinkStats.last_error`, which `smsgw status`
    and status.json show): the SMSC's words without the password, the journal's also without numbers.
    `key` is the config key the password came from (`smsc.settings.password_key`)."""
    name, text = cfg.name, without_password(refusal.text, password, cfg.system_id)
    check = login_check(name, key) if refusal.code in LOGIN_REFUSALS else None
    report = log.error if refusal.fatal else log.warning
    report("cimd2.login_refused", link=name, code=refusal.code, error=without_numbers(text),
           fatal=refusal.fatal, **({"check": check} if check else {}))  # fmt: skip
    code = "" if refusal.code is None else f"{refusal.code} "
    return f"login refused: {code}{without_numbers(text)}" + (f": {check}" if check else "")
