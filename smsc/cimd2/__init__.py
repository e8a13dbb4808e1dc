"""Nokia CIMD2: `packet` is the pure wire codec (framing, tables, CIMD character set, parser) and `link`
the asyncio client that implements `smsc.base.SmscLink` on top of it."""

from smsc.cimd2.link import Cimd2Link

__all__ = ["Cimd2Link"]
