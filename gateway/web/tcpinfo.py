"""What the kernel knows of a panel connection's traffic (Linux `struct tcp_info`), for the deadlines
and the caps of gateway/web/connections.py: our own looks cannot tell a client reading an answer
slowly from one reading nothing, nor when bytes last moved on a socket whose answer the kernel holds.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

_SIZE = 232
# tcpi_bytes_acked (u64, since 4.1): how much of what we sent the client has acknowledged. A write
# is stalled when this stops moving, not when our buffer stays full: the kernel calls a socket
# writable only once a third of its send buffer (auto-tuned up to 4 MB) is free, so a client reading
# steadily at 100 KB/s kept the panel's writes paused for over 10 s.
_BYTES_ACKED = struct.Struct("=Q")
_BYTES_ACKED_OFFSET = 120
# tcpi_last_data_sent and tcpi_last_data_recv (u32 milliseconds since the kernel last sent the
# client data of ours, last received data from it; tcpi_last_ack_sent between them), since 2.6.
_LAST_DATA = struct.Struct("=I4xI")
_LAST_DATA_OFFSET = 44
# tcpi_notsent_bytes (u32, since 4.6): what of ours the kernel holds and has not sent yet (the client's
# window too small for it), as against sent and waiting for the client's acknowledgement.
_NOTSENT = struct.Struct("=I")
_NOTSENT_OFFSET = 144


def _fields(sock: Any, fields: struct.Struct, offset: int) -> tuple[int, ...] | None:
    """None without them (not Linux, a kernel whose struct ends before them, or the socket gone: uvloop's
    says so with a ValueError, its descriptor -1 from the abort until the connection's loss is
    reported, a loop iteration later, while the gate still counts the connection)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _SIZE)
        return fields.unpack_from(info, offset)
    except (AttributeError, OSError, ValueError, struct.error):
        return None


def bytes_acked(sock: Any) -> int | None:
    """Bytes of ours the client has acknowledged."""
    found = _fields(sock, _BYTES_ACKED, _BYTES_ACKED_OFFSET)
    return None if found is None else found[0]


def quiet_ms(sock: Any) -> int | None:
    """Milliseconds since data last moved either way on the socket."""
    found = _fields(sock, _LAST_DATA, _LAST_DATA_OFFSET)
    return None if found is None else min(found)


def unsent_bytes(sock: Any) -> int | None:
    """Bytes of ours the kernel holds and has not sent: an answer the client is still reading."""
    found = _fields(sock, _NOTSENT, _NOTSENT_OFFSET)
    return None if found is None else found[0]
