"""No core dumps: the daemon and its intake workers hold the links' passwords, the relay's, the
metrics token and mail being relayed, and a crash under a shell's `ulimit -c unlimited` (or a
distribution's default) wrote all of them to a core file in the working directory. The unit says
`LimitCORE=0` as well; this covers a start outside systemd. Only the soft limit goes to 0: the
hard one is left for an admin who runs a copy under a debugger on purpose."""

from __future__ import annotations

import resource


def no_core_dumps() -> None:
    """Sets this process's core size limit to 0; its children inherit it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
