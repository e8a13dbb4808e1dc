"""SIGHUP, which the gateway never obeys: there is nothing to reload (a changed config needs a
restart), and its default action ends a process without a word, which systemd's Restart=on-failure
takes for a clean stop. `smsgw run` ignores it first thing, the running daemon logs it
(`gateway.daemon`), and the intake workers are spawned with it ignored (`hup_ignored`)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def hup_ignored() -> Iterator[None]:
    """SIGHUP ignored for the moment of a spawn, which exec keeps: a worker ignores HUP itself only
    once its imports are done, and a HUP to the process group meanwhile (a storm, `systemctl kill -s
    HUP`) ended it (status -1) and its restarts backed off. The daemon only logs a HUP, so one that
    comes during the spawn costs a log line at most."""
    try:
        before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to inherit from there
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, before)
