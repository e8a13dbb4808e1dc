"""What CIMD2's numeric codes mean: the texts of the error codes in 900, the login refusals a retry
cannot fix (and what to check after those that are the credentials'), the status codes of 061 as
`ReportStatus` and the reasons in 062. Kept apart from the wire codec (`packet.py`), which carries
them as plain numbers and needs no `smsc.base` type; the link, `messages.py` and the simulator look
their meaning up here.
"""

from __future__ import annotations

import json

from smsc.base import ReportStatus

ERRORS: dict[int, str] = {
    0: "no error", 1: "unexpected operation", 2: "syntax error", 3: "unsupported parameter",
    4: "connection to SMSC lost", 5: "no response from SMSC", 6: "general system error",
    7: "cannot find information", 8: "parameter formatting error", 9: "requested operation failed",
    10: "temporary congestion", 100: "invalid login", 101: "incorrect access type",
    102: "too many users with this login", 103: "login refused by SMSC", 104: "invalid window size",
    105: "windowing disabled", 106: "virtual SMSC barring", 107: "invalid subaddress",
    108: "alias account, login refused", 300: "incorrect destination address",
    301: "incorrect number of destination addresses", 302: "syntax error in user data",
    303: "incorrect bin/head/normal user data parameter combination", 304: "incorrect data coding scheme",
    305: "incorrect validity period", 306: "incorrect originator address", 307: "incorrect protocol id",
    308: "incorrect first delivery time", 309: "incorrect reply path", 310: "incorrect status report request",
    311: "incorrect cancel enabled", 312: "incorrect priority", 313: "incorrect tariff class",
    314: "incorrect service description", 315: "incorrect transport type", 316: "incorrect message type",
    318: "incorrect MMS", 319: "incorrect operation timer", 320: "incorrect dialogue ID",
    321: "incorrect alpha originator usage", 322: "invalid data for alpha numeric originator",
    400: "enquire: incorrect address", 401: "enquire: incorrect SCTS",
    500: "delivery request: incorrect SCTS", 501: "delivery request: invalid mode",
    502: "delivery request: incorrect parameter combination",
    600: "cancel: error 600", 601: "cancel: error 601", 602: "cancel: error 602", 603: "cancel: error 603",
    800: "set: password change failed", 801: "set: password change not allowed", 900: "get: unsupported item",
}  # fmt: skip
# Login refusals that a retry cannot fix: the account or the configuration is wrong (protocols.md 1.7).
FATAL_LOGIN_ERRORS = frozenset({100, 101, 103, 106, 107, 108})
# Those that mean the credentials (100 invalid login, 103 login refused by SMSC): the error's number
# and the SMSC's words alone named no key to fix.
LOGIN_REFUSALS = frozenset({100, 103})


def login_check(name: str, password_key: str = "password") -> str:
    """What to check after a login refused for its credentials; never the password itself.
    `password_key`: the key it came from (`smsc.settings.password_key`)."""
    link = json.dumps(name, ensure_ascii=False)  # as TOML quotes it (gateway.configbase.quoted)
    return f"the SMSC refused the login: check [[smsc]] {link} system_id and {password_key}"


# 061 → (meaning, mapped status); 1 and 5 are intermediate, as Kannel treats them.
STATUS_CODES: dict[int, tuple[str, ReportStatus]] = {
    1: ("in process", ReportStatus.PENDING), 2: ("validity period expired", ReportStatus.FAILED),
    3: ("delivery failed", ReportStatus.FAILED), 4: ("delivery successful", ReportStatus.DELIVERED),
    5: ("no response", ReportStatus.PENDING), 6: ("last no response", ReportStatus.FAILED),
    7: ("message cancelled", ReportStatus.FAILED), 8: ("message deleted", ReportStatus.FAILED),
    9: ("message deleted by cancel", ReportStatus.FAILED),
}  # fmt: skip
STATUS_ERRORS: dict[int, str] = {
    1: "unknown subscriber", 9: "illegal subscriber", 11: "teleservice not provisioned", 13: "call barred",
    15: "CUG reject", 19: "no SMS support in MS", 20: "error in MS", 21: "facility not supported",
    22: "memory capacity exceeded", 29: "absent subscriber", 30: "MS busy for MT SMS",
    36: "network/protocol failure", 44: "illegal equipment", 60: "no paging response", 61: "GMSC congestion",
    63: "HLR timeout", 64: "MSC/SGSN timeout", 70: "SMRSE/TCP error", 72: "MT congestion",
    75: "GPRS suspended", 80: "no paging response via the MSC", 81: "IMSI detached",
    82: "roaming restriction", 83: "deregistered in HLR for non-GPRS", 84: "MS purged for non-GPRS",
    85: "no paging response via the SGSN", 86: "GPRS detached",
    87: "deregistered in HLR for GPRS", 88: "MS purged for GPRS",
    89: "unidentified subscriber via the MSC", 90: "unidentified subscriber via the SGSN",
    112: "originator out of prepaid credit", 113: "destination out of prepaid credit",
    114: "prepaid system error",
}  # fmt: skip


def error_text(code: int) -> str:
    return ERRORS.get(code, f"error {code}")


def status_error_text(code: int) -> str:
    return STATUS_ERRORS.get(code, f"reason {code}")
