"""`smsgw check-config`: the config as `run` would take it, and what it may do that hurts.

The refusals are the config's own and `gateway.configcheck`'s: exit 3, or 1 where a directory's
filesystem is read-only itself or state_dir's disk is not mounted (`gateway.readonlyfs.refusal_exit`:
the unit restarts the service on 1, not on 3, and no config change is wanted); the rest is said as warnings
and notes, each with what to do: the config's doubts (`gateway.configdoubts`), the stored accounts'
(`gateway.cli.stored`, `gateway.cli.seedwords`, `gateway.cli.demoaccount`), the senders' notes. Apart
from `gateway.cli.main`, which keeps the parser and the start, since it grew past what one module may
hold.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli.common import CliError

if TYPE_CHECKING:
    from gateway.config import Config


def check_config(cfg: Config, args: argparse.Namespace) -> int:
    """Exit 3 (1: a disk to remount or mount) with the first refusal; else "config OK" and every
    warning and note, exit 0."""
    from billing_reports.dirproblem import billing_dir_problem
    from gateway.cli.binderror import busy_listeners
    from gateway.cli.common import running_pid
    from gateway.cli.demoaccount import demo_doubts
    from gateway.cli.seedwords import seed_refusals
    from gateway.cli.sendernotes import sender_notes
    from gateway.cli.stored import stored_warnings
    from gateway.configcheck import exposed_secrets, state_dir_problem
    from gateway.configdoubts import setup_doubts
    from gateway.readonlyfs import refusal_exit
    from gateway.tlsdoubts import selfsigned_other_name

    problem = state_dir_problem(cfg) or billing_dir_problem(cfg.billing_dir, cfg.state_dir)
    if problem is not None:
        raise CliError(problem, refusal_exit(problem))  # a filesystem read-only itself: 1, not 3
    for exposed in exposed_secrets(cfg, args.config):
        print(f"smsgw: warning: {exposed.line()}", file=sys.stderr)
    print(
        f"config OK: {len(cfg.smsc)} SMSC link(s), SMTP on {cfg.smtp.listen},"
        f" domains {', '.join(cfg.gateway.domains)}"
    )
    # said once here and at the start (`gateway.accountsenders`); any other command would repeat it.
    for line in sender_notes(cfg):  # the stored accounts' senders too
        print(f"note: {line}")
    for _, doubt in setup_doubts(cfg):
        print(f"smsgw: warning: {doubt}", file=sys.stderr)
    if (renamed := selfsigned_other_name(cfg)) is not None:  # a note: the start mends it itself
        print(f"note: {renamed}")
    for line in [*stored_warnings(cfg), *demo_doubts(cfg)]:
        print(f"smsgw: warning: {line}", file=sys.stderr)
    for line in seed_refusals(cfg)[1]:  # a stored account's block newer rules refuse: it changes nothing
        print(f"note: {line}")
    if running_pid(cfg) is None:  # a bind tried only where no daemon holds the ports as its own
        for line in busy_listeners(cfg):
            print(f"smsgw: warning: {line}", file=sys.stderr)
    return 0
