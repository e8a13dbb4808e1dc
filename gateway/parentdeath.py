"""An intake worker ends with its daemon, even a worker that is stopped itself.

A running worker sees its channel to the daemon close and ends. One stopped at that moment (SIGSTOP,
a debugger, a job-control stop) sees nothing: killed outright outside systemd (which kills the whole
group), the daemon left it holding its copy of the relay port's listening socket, and the next start
could not bind the port until an admin found the stopped process. The kernel's parent-death signal
reaches a stopped process too. SIGKILL: the daemon, the only way its mail gets to disk, is gone, so
nothing the worker still holds can be accepted any more (its clients get no 250 and send again).
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """Ask the kernel for SIGKILL when the process that started this one ends; Linux only, and a
    libc without prctl (or a sandbox refusing it) leaves the channel's end as the only sign."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
