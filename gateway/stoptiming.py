"""How long each part of a stop may take, in one place for the daemon, its intake workers' supervision
(`gateway/intake_workers.py`) and the workers themselves (`gateway/intake_child.py`): a worker read
its bound from its supervisor's module, and imported all of it for one number.
"""

from __future__ import annotations

# An intake worker still running this long after it was told to stop is killed by the daemon.
WORKER_STOP_SECONDS = 20.0
# How long a worker waits for its mails being accepted while the daemon is there: their commit may be
# held (a slow fsync), and a `421` said early to a mail the daemon then commits makes its retry a second
# SMS. Just under WORKER_STOP_SECONDS, so that the idle sessions still hear `421` from the worker's own
# close, not the reset of a kill.
HELD_DRAIN_SECONDS = WORKER_STOP_SECONDS - 2.0
# After the daemon's last writes: for each mail written to be told its `250` before the rest hear `421`.
ANSWERED_SECONDS = 5.0
# An intake worker stopped by a signal: how long its end waits for the daemon's own stop (systemd
# signals every process of the unit) before it is taken for a worker stopped alone, and restarted.
SIGNAL_GRACE_SECONDS = 3.0
