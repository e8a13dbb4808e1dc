"""/healthz and the supervised workers: 503 when the node cannot do its job, a warning line otherwise.

`smsgw status` named a worker restarting (exit 1) while /healthz said "ok": a dispatcher failing at
every claim left each SMS waiting, restarted every 30 s, and a load balancer went on sending mail to
that gateway alone. One crash is not a loop: the worker is back within a second and /healthz stays
200; a third within 5 minutes is, and lasts until the worker has run 60 s since its restart
(`gateway.crashloop`). A stalled worker (no beat past its limit, the systemd watchdog withheld) is
in trouble too, as in `status`.

503 tells a load balancer to send the mail elsewhere, so it means the node cannot do its job: the
dispatcher in trouble (no SMS leaves), or no intake process serving the relay port (no mail is
taken). An intake process is judged by what its port does, not by its crashes: one crash-looping but
serving again took mail for a minute while /healthz said 503 "no intake process takes mail", and a
load balancer pulled a working node; one killed (its heartbeats stopped) and restarting, or started
and not serving yet (7.7 s under load), took none while /healthz said "ok". Serving, its loop is a
warning line; not serving, whatever the reason, it takes no mail. Any worker's loop answered 503
at first, and a node whose housekeeping looped, or one of four intake processes, was pulled while
it still took and sent every SMS. The outbox (answers, bounces, notices to the senders) is judged as
the relay it feeds, whose outage keeps /healthz 200: its mail waits on this node's disk whatever the
balancer does, and SMS still leave. A loop of such a worker is a warning line in the 200 body, and
`smsgw status` (the worker "crash-looping", exit 1). So is a worker's own `warning` (the submission
port off since the start, `gateway.submissionretry`).

/healthz is public: the error's kind is said (`OperationalError`), not its text, which may name a
file or a phone number; `smsgw status` and the log say the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.crashloop import LOOP_WINDOW_SECONDS, loop_crashes

if TYPE_CHECKING:  # `smsgw status` reads these words too, and its --help loads no logging (supervisor's)
    from gateway.supervisor import Worker

ESSENTIAL = "dispatcher"  # in trouble: no SMS leaves this node
INTAKE_PREFIX = "intake-"  # the relay port's processes (`gateway.intake_workers`): all in trouble, no mail
# An intake process beats every second (`gateway.intake_child.HEARTBEAT_SECONDS`) and is killed only after
# 30 s of silence; a stopped one (SIGSTOP, a hung loop) took no mail meanwhile while `status` said
# "running" and /healthz "ok". Five beats missed is said (`status` too).
INTAKE_SILENT_SECONDS = 5.0


def intake_silent(name: str, state: str, beat_ago: float) -> bool:
    """Whether the intake process `name` has sent no heartbeat for over `INTAKE_SILENT_SECONDS`."""
    return name.startswith(INTAKE_PREFIX) and state == "running" and beat_ago > INTAKE_SILENT_SECONDS


def silent_words(name: str, beat_ago: float) -> str:
    return f"worker {name} silent for {beat_ago:.0f} s: no heartbeat (it is killed and restarted at 30 s)"


@dataclass
class WorkersHealth:
    trouble: str | None = None  # what /healthz answers 503 with
    warnings: list[str] = field(default_factory=list)  # workers in trouble that leave the node working

    def body(self) -> str:
        """The lines after "ok" in a 200."""
        return "".join(f"warning: {said}\n" for said in self.warnings)


def worker_trouble(name: str, worker: Worker, now: float) -> str | None:
    """Why `worker` is in trouble (stalled, crash-looping, or its own `warning`), or None."""
    if worker.stalled(now):
        return f"worker {name} stalled: no sign of life for {now - worker.last_beat:.0f} s"
    if intake_silent(name, worker.state, now - worker.last_beat):
        return silent_words(name, now - worker.last_beat)
    idle = worker.serving is not None and not worker.serving()
    if crashes := loop_crashes(worker.crashed_at, now, worker.up_since):
        kind = (worker.last_error or "").partition(":")[0] or "an error"
        state = "waiting to restart" if worker.state == "restarting" else "running again"
        state = "starting again, not serving yet" if idle and worker.state != "restarting" else state
        return (
            f"worker {name} crash-looping: {crashes} crashes in the last"
            f" {LOOP_WINDOW_SECONDS / 60:.0f} min, the last {now - worker.crashed_at[-1]:.0f} s ago"
            f" ({kind}), {state}; smsgw status and the log say why"
        )
    if idle:
        return idle_words(name, worker, now)
    return worker.warning  # a worker's own word, public: the submission port off (gateway.submissionretry)


def idle_words(name: str, worker: Worker, now: float) -> str:
    """Why the relay port's process `name`, not serving, takes no mail: down or starting."""
    if worker.state == "restarting":
        ended = f", it ended {now - worker.crashed_at[-1]:.0f} s ago" if worker.crashed_at else ""
        return f"worker {name} not serving: waiting to restart{ended}"
    if worker.up_since is not None:
        return f"worker {name} not serving yet: starting for {now - worker.up_since:.0f} s"
    return f"worker {name} not serving: {worker.state}"


def takes_mail(worker: Worker, now: float, trouble: str | None) -> bool:
    """Whether an intake process serves its share of the relay port now: by its port where it tells
    (`Worker.serving`), beating; else (none told) by having no trouble."""
    if worker.serving is None:
        return trouble is None
    silent = intake_silent(worker.name, worker.state, now - worker.last_beat)
    return worker.serving() and not worker.stalled(now) and not silent


def workers_health(workers: Mapping[str, Worker], now: float) -> WorkersHealth:
    """The workers' part of /healthz: a 503's words, or the warnings of a 200."""
    said = {name: why for name, w in sorted(workers.items()) if (why := worker_trouble(name, w, now))}
    intake = [name for name in workers if name.startswith(INTAKE_PREFIX)]
    health = WorkersHealth()
    if ESSENTIAL in said:
        health.trouble = said.pop(ESSENTIAL)
    elif intake and not any(takes_mail(workers[name], now, said.get(name)) for name in intake):
        health.trouble = "no intake process takes mail: " + "; ".join(
            said.pop(name) for name in sorted(intake)
        )
    health.warnings = list(said.values())
    return health
