"""A data subject's request about one phone number (GDPR art. 15 and 17, RODO in Poland): what the
database holds about the number, and its erasure, as `smsgw phone show|forget`.

Without it the operator answered such a letter by writing SQL against the live database, and
missed the copies of a text the schema keeps in more than one place (the SMS, its parts, the
delivery report, the mail that quoted it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.privacy.cli import add_commands

# Each name and the module that defines it, imported the first time the name is read (PEP 562): the
# command line imports this package to add its subcommands, and `smsgw --help` must not import the
# store and the SMTP side for that.
_WHERE = {
    "add_commands": "gateway.privacy.cli",
}

__all__ = ["add_commands"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
