"""The relaying server's queue id (R-1.8) is read from the header block alone: the top Received:
field was looked for by splitting the mail's first 64 KB into lines, its body with them, and every
mail without a Date: asks (e2e's bench mail: 27 k instructions a mail, 8 k now). Counted here in the
memory the split takes: a body of 60 KB split into lines takes more than the body's size again, the
header block a few hundred bytes. What is found is as before (tests/test_dedup_received.py).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from gateway.smtp.relayqueueid import queue_identity, top_received

RECEIVED = (
    b"Received: from [127.0.0.2] (unknown [127.0.0.2])\r\n"
    b"\tby mx.example.com (Postfix) with ESMTP id 4Dq8Zb1kQ2z9sW\r\n"
    b"\tfor <601125001@sms.example.com>; Sat,  5 Dec 2026 16:13:19 +0000 (UTC)\r\n"
)
HEADER = (
    b"From: alerts@acme.example\r\nTo: 601125001@sms.example.com\r\nSubject: Disk full\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
)
BODY = b"".join(b"Line %04d of a long report, received: as it was written.\r\n" % i for i in range(1000))


def peak(read: Callable[[bytes], object], raw: bytes) -> int:
    tracemalloc.start()
    try:
        read(raw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_top_received_field_is_read_without_splitting_the_body() -> None:
    relayed, direct = RECEIVED + HEADER + BODY, HEADER + BODY
    assert len(BODY) > 50_000
    assert queue_identity(relayed) == "postfix\0mx.example.com\x004Dq8Zb1kQ2z9sW"
    assert queue_identity(direct) is None
    assert top_received(direct) is None
    for raw in (relayed, direct):
        assert peak(queue_identity, raw) < 4_000  # the body split into lines: > 100,000
    # A mail whose header block has no end within the scan is read as before, line by line.
    assert top_received(RECEIVED + b"Subject: x") is not None
    assert top_received(RECEIVED + b"Subject: x\r\n\r\n").endswith("16:13:19 +0000 (UTC)")
