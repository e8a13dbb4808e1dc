"""Nokia CIMD2: `packet` is the pure wire codec (framing, tables, parser), `charset` the CIMD character
set for user data (which `packet` re-exports), `codes` what the error and status codes mean, `messages`
the mapping of packets to and from the `smsc.base` types, `session` one TCP session's state, `link` the
asyncio client that implements `smsc.base.SmscLink` on top of them, and `inbound` the SMSC's requests
to that client (deliveries and status reports)."""

from smsc.cimd2.link import Cimd2Link

__all__ = ["Cimd2Link"]
