"""Nokia CIMD2: `packet` is the pure wire codec (framing, tables, parser), `charset` the CIMD character
set for user data (which `packet` re-exports), `codes` what the error and status codes mean, `messages`
the mapping of packets to and from the `smsc.base` types, `session` one TCP session's state, `link` the
asyncio client that implements `smsc.base.SmscLink` on top of them, and `inbound` the SMSC's requests
to that client (deliveries and status reports).

`Cimd2Link` is imported from `link` when first asked for: the store reads CIMD2 times
(`smsc.cimd2.times`) and every `smsgw` command that opens it imported the whole client with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsc.cimd2.link import Cimd2Link

__all__ = ["Cimd2Link"]


def __getattr__(name: str) -> Any:
    if name == "Cimd2Link":
        from smsc.cimd2.link import Cimd2Link

        return Cimd2Link
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
