"""Open files: each SMTP session, link, panel request and database handle is a descriptor, and a
daemon started from a shell with the usual soft limit of 1024 (or 64 under a tight `ulimit -n`) ran
out of them long before `[smtp] max_connections`: clients were accepted and closed at once with no
421 and no line in the log (uvloop closes what it cannot keep), and an idle few dozen stopped all mail.
The soft limit is raised to the hard one at the start (what systemd's LimitNOFILE sets, or the
shell's hard limit), and a limit still too small for the configured sessions is said."""

from __future__ import annotations

import resource

# Descriptors beyond the SMTP sessions: the database and its WAL, the links, the panel's
# connections, the intake workers' channels, logs and the simulator.
SPARE = 200


def raise_fd_limit(max_connections: int) -> str | None:
    """Raises this process's soft descriptor limit to its hard one (children inherit it); a warning
    when the result leaves too few for `max_connections` sessions and the rest, else None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # kept as it was; judged below
    if soft != resource.RLIM_INFINITY and soft < max_connections + SPARE:
        return (
            f"the open-file limit is {soft}, too few for [smtp] max_connections = {max_connections}"
            f" sessions and about {SPARE} other descriptors: clients beyond it are closed without a"
            f" word; raise LimitNOFILE (systemd) or `ulimit -n`, or lower max_connections"
        )
    return None
