"""A data subject's request about one phone number (GDPR art. 15 and 17, RODO in Poland): what the
database holds about the number, and its erasure, as `smsgw phone show|forget`.

Without it the operator answered such a letter by writing SQL against the live database, and
missed the copies of a text the schema keeps in more than one place (the SMS, its parts, the
delivery report, the mail that quoted it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazynames import lazy_getattr

if TYPE_CHECKING:
    from gateway.privacy.cli import add_commands

# Each name and the module that defines it, imported the first time the name is read (PEP 562): the
# command line imports this package to add its subcommands, and `smsgw --help` must not import the
# store and the SMTP side for that.
_WHERE = {
    "add_commands": "gateway.privacy.cli",
}

__all__ = ["add_commands"]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
