"""Nokia CIMD2: `packet` is the pure wire codec (framing, tables, parser), `charset` the CIMD character
set for user data (which `packet` re-exports), `messages` the mapping of packets to and from the
`smsc.base` types, and `link` the asyncio client that implements `smsc.base.SmscLink` on top of them."""

from smsc.cimd2.link import Cimd2Link

__all__ = ["Cimd2Link"]
