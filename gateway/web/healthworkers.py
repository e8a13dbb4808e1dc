"""/healthz and the supervised workers: one crash-looping or stalled answers 503.

`smsgw status` named a worker restarting (exit 1) while /healthz said "ok": a dispatcher failing at
every claim left each SMS waiting, restarted every 30 s, and a load balancer went on sending mail to
that gateway alone. One crash is not a loop: the worker is back within a second and /healthz stays
200; a third within 5 minutes is, and 503 lasts until the worker has run 60 s without one (twice the
longest back-off: the supervisor then takes the next crash for a fresh fault, not the same loop).
A stalled worker (no beat past its limit, the systemd watchdog withheld) is 503 too, as in `status`.

/healthz is public: the error's kind is said (`OperationalError`), not its text, which may name a
file or a phone number; `smsgw status` and the log say the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.supervisor import BACKOFF_MAX_SECONDS, Worker

LOOP_CRASHES = 3  # this many crashes of one worker within LOOP_WINDOW_SECONDS: a loop
LOOP_WINDOW_SECONDS = 300.0
LOOP_OVER_SECONDS = 2 * BACKOFF_MAX_SECONDS  # run this long since its last crash: no longer looping


def crash_loop(worker: Worker, now: float) -> int:
    """The crashes of `worker` in the last LOOP_WINDOW_SECONDS when they make a loop at `now`
    (monotonic time, the supervisor's), else 0."""
    recent = [at for at in worker.crashed_at if now - at <= LOOP_WINDOW_SECONDS]
    if len(recent) >= LOOP_CRASHES and now - recent[-1] < LOOP_OVER_SECONDS:
        return len(recent)
    return 0


def workers_trouble(workers: Mapping[str, Worker], now: float) -> str | None:
    """What /healthz answers 503 with for the workers, or None when none is in trouble."""
    for name, worker in sorted(workers.items()):
        if worker.stalled(now):
            return f"worker {name} stalled: no sign of life for {now - worker.last_beat:.0f} s"
        if crashes := crash_loop(worker, now):
            kind = (worker.last_error or "").partition(":")[0] or "an error"
            state = "waiting to restart" if worker.state == "restarting" else "running again"
            return (
                f"worker {name} crash-looping: {crashes} crashes in the last"
                f" {LOOP_WINDOW_SECONDS / 60:.0f} min, the last {now - worker.crashed_at[-1]:.0f} s ago"
                f" ({kind}), {state}; smsgw status and the log say why"
            )
    return None
