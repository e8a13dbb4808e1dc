"""A write whose outcome the SMTP session cannot know: the mail may be committed, or not.

An intake worker's write goes to the daemon (`gateway.intake_child`); a daemon that neither answers
nor grants the withdrawal of the mail within the worker's bounds (stopped, or dead after the write
was sent) may have committed it, or may still. Any failure reply (`451`) would then be a lie for a
mail that is sent, and a client that retried it without a Message-ID would make a second SMS; `250`
would be a lie for a mail never written. The session closes without a reply (RFC 5321 6.1: the
client keeps the mail and tries again), as when a worker is killed once the client's data is in.
"""

from __future__ import annotations


class OutcomeUnknown(Exception):
    """Raised by a write whose mail may or may not be committed: its client gets no reply at all."""
