"""What code a process runs, as a stamp of its source files: an intake worker started after an
upgrade replaced the files under a running daemon (`pip install -U`) runs the new code against the
old daemon's channel, whose pickled records no longer fit (each start crashed: 451 to every mail
on the relay port, while the daemon, alive and beating, was never restarted). The worker compares
its stamp with the daemon's and exits with `CODE_CHANGED`; the daemon then stops with a failure,
and systemd starts it again, all of it on the new code."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

CODE_CHANGED = 75  # the worker's exit status (EX_TEMPFAIL) when its code is not the daemon's
_PACKAGES = ("gateway", "smsc", "acl", "billing_reports")


@cache
def code_stamp() -> str:
    """A hash of the name, size and modification time of every source file of the packages, as
    this process first saw them (a few ms; its own code is loaded by then)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class CodeChanged(Exception):
    """The code on disk is no longer the running daemon's (`gateway.codestamp`): `smsgw run`
    exits with status 1, and systemd's `Restart=on-failure` starts it again on the new code."""
