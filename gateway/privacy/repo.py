"""What the database holds about one phone number, and the erasure of its texts: one object for the
commands (`cli`), whose parts live apart. `rows` has the number's SQL fragments, `found` the mails
about the phone (by reference, and by what they say), `held` the reads of art. 15 (`phone show`),
`erasure` the erasure of art. 17 (`phone forget`).
"""

from __future__ import annotations

from gateway.privacy.erasure import PhoneErasure
from gateway.privacy.held import PhoneHoldings
from gateway.privacy.naming import ERASED

# The marker is read from here by the panel and the store's mail view, as before the split.
__all__ = ["ERASED", "PhoneRepo"]


class PhoneRepo(PhoneHoldings, PhoneErasure):
    """One phone's rows, by its E.164 form `number`: what is held about it, and its erasure (which
    reads what the reads found: the mails named, the records, the split between them)."""
