"""A data subject's request about one phone number (GDPR art. 15 and 17, RODO in Poland): what the
database holds about the number, and its erasure, as `smsgw phone show|forget`.

Without it the operator answered such a letter by writing SQL against the live database, and
missed the copies of a text the schema keeps in more than one place (the SMS, its parts, the
delivery report, the mail that quoted it).
"""

from gateway.privacy.cli import add_commands

__all__ = ["add_commands"]
