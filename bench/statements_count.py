"""bench/statements.py's counting and its printed figures: statements, VM instructions, fsyncs.

Statements are keyed by shape (bound values folded into `?`), so that one line stands for every
execution of a statement; the VM instructions of each shape come from SQLite's progress handler.
"""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

_STRING = re.compile(r"'(?:[^']|'')*'")


_BLOB = re.compile(r"\bX'[0-9A-F]*'", re.IGNORECASE)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")


_LIST = re.compile(r"\((?:\s*\?\s*,)+\s*\?\s*\)")


_SPACE = re.compile(r"\s+")


def normalise(sql: str) -> str:
    """One key per statement shape: bound values (expanded into the text by SQLite) become `?`."""
    sql = _BLOB.sub("?", sql)
    sql = _STRING.sub("?", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _LIST.sub("(?…)", sql)
    return _SPACE.sub(" ", sql).strip()


TICK = 10  # VM instructions per progress-handler call


class Counter:
    """Statements per shape (the trace callback) and the VM instructions each shape ran (the
    progress handler: a tick goes to the statement begun last, right for one connection on one
    thread unless a cursor is read while another statement runs, which the daemon does not do)."""

    def __init__(self) -> None:
        self.on = False
        self.counts: collections.Counter[str] = collections.Counter()
        self.steps: collections.Counter[str] = collections.Counter()
        self.last = "(before any statement)"
        self.samples: dict[str, str] = {}  # one statement as executed, per shape

    def __call__(self, sql: str) -> None:
        if self.on:
            key = normalise(sql)
            self.counts[key] += 1
            self.last = key
            if key not in self.samples:
                self.samples[key] = sql

    def tick(self) -> int:
        if self.on:
            self.steps[self.last] += TICK
        return 0


def report_steps(counter: Counter, n: int, top: int, compare: str | None) -> None:
    """The shapes by VM instructions per execution and in total (with a saved run's beside them)."""
    old: dict[str, list[int]] = json.loads(Path(compare).read_text())["shapes"] if compare else {}
    total = sum(counter.steps.values())
    print(f"\n  SQLite VM instructions per mail: {total / n:,.0f} (counted every {TICK})")
    per_exec = {k: counter.steps[k] / c for k, c in counter.counts.items() if c}

    def was(key: str) -> str:
        if key not in old or not old[key][0]:
            return ""
        return f"{old[key][1] / old[key][0]:>10,.0f}"

    head = f"{'steps/exec':>10} {'was':>10}" if old else f"{'steps/exec':>10}"
    print(f"\n  by steps per execution\n  {head}  {'execs':>7}  statement")
    for key, steps in sorted(per_exec.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {steps:>10,.0f} {was(key)}  {counter.counts[key]:>7}  {key[:140]}")
    print(f"\n  by total steps\n  {'per mail':>10}  {'steps/exec':>10}  {'execs':>7}  statement")
    for key, steps in counter.steps.most_common(top):
        c = counter.counts.get(key, 0)
        print(f"  {steps / n:>10,.0f}  {steps / c if c else 0:>10,.0f}  {c:>7}  {key[:140]}")
    if old:
        grown = [
            (per_exec[k] / max(old[k][1] / old[k][0], TICK), k)
            for k in per_exec
            if k in old and old[k][0] and per_exec[k] >= 200
        ]
        print("\n  grown against the saved run (steps per execution, this / that, of those ≥ 200 now)")
        for ratio, key in sorted(grown, reverse=True)[:top]:
            print(f"  {ratio:>8.1f}×  {per_exec[key]:>10,.0f}  {key[:140]}")


def report(
    counts: collections.Counter[str],
    n: int,
    sent: int,
    took: float,
    fsyncs: collections.Counter[str] | None,
    top: int,
) -> None:
    total = sum(counts.values())
    begins = sum(c for sql, c in counts.items() if sql.upper().startswith("BEGIN"))
    print(f"{n} single-recipient mails → {sent} SMS with delivery reports in {took:.1f} s")
    print(f"  SQL statements per mail:  {total / n:6.2f}")
    print(f"  transactions per mail:    {begins / n:6.2f}")
    if fsyncs is None:
        print("  fsyncs per mail:          (strace not available)")
    else:
        detail = ", ".join(f"{k} {v / n:.3f}" for k, v in sorted(fsyncs.items()))
        print(f"  fsyncs per mail:          {sum(fsyncs.values()) / n:6.3f}  ({detail or 'none'})")
    print("\n  per mail  statement")
    for sql, c in counts.most_common(top):
        print(f"  {c / n:8.3f}  {sql[:150]}")
    rest = counts.most_common()[top:]
    if rest:
        print(f"  {sum(c for _s, c in rest) / n:8.3f}  ({len(rest)} other statements)")
