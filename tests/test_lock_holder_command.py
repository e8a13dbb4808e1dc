"""The self-signed pair's lock holder named by its command as shell words (`gateway.tlscert.lock_holder`).

Its /proc cmdline was printed with its NULs made spaces and the rest raw: a `python -c` script's line
breaks broke the start's error across lines (and showed as `\\x0a` where the CLI escapes them),
an argument with a space in it ran into the next. The holder here is a real process, started under
a program name with a space, holding a real `flock` on the pair's lock, stopped as Ctrl-Z stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import tlscert
from gateway.store.proclocks import process_command
from tests.conftest import free_port, make_config

# Locks the file named by its argument, says so, and waits: its line breaks are the point.
HOLD = "import fcntl as f,os,sys\nf.flock(os.open(sys.argv[1],2),2)\nprint(flush=1)\ninput()"
SHOWN = r"'my py' -c $'import fcntl as f,os,sys\nf.flock(os.open(sys.argv[1],2),2)\nprint(flush=1)\ninput()'"


def test_the_holder_of_the_pairs_lock_is_named_by_its_command_in_shell_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tlscert, "LOCK_WAIT_SECONDS", 0.5)  # 30 s in production
    cfg = make_config(tmp_path, smsc_port=free_port())
    cert = tlscert.make_selfsigned(cfg)[0]
    cert.write_text("")  # openssl's output lost: the pair is made again, under the lock
    argv = ["my py", "-c", HOLD, tlscert.SELF_LOCK]
    with subprocess.Popen(
        argv,
        executable=sys.executable,
        cwd=cfg.state_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "\n"
            os.kill(holder.pid, signal.SIGSTOP)
            stopped(holder.pid)  # the signal is delivered later than kill() returns
            got: list[BaseException] = []
            with capture_logs() as logs:
                thread = threading.Thread(target=lambda: got.append(raises(cfg)), daemon=True)
                thread.start()
                thread.join(60)
        finally:
            holder.kill()
            holder.wait()
    assert len(got) == 1 and isinstance(got[0], tlscert.CertError), got
    said = str(got[0])
    named = f"process {holder.pid} ({SHOWN} {tlscert.SELF_LOCK}), stopped"
    assert f"by {named}, which makes the pair" in said, said
    assert "\n" not in said and "\\x0a" not in said, said
    (wait,) = [e for e in logs if e["event"] == "tls.selfsigned_lock_wait"]
    assert wait["holder"] == named, wait


def stopped(pid: int) -> None:
    """Once the kernel shows `pid` stopped, as the lock's message reads it (/proc's state `T`)."""
    for _ in range(500):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} not stopped after 5 s")


def raises(cfg: object) -> BaseException:
    try:
        tlscert.make_selfsigned(cfg)  # type: ignore[arg-type]
    except BaseException as exc:
        return exc
    raise AssertionError("the pair was made under a lock another process holds")


def test_a_holders_words_come_back_whole_from_bash() -> None:
    # A NBSP (common in Polish text) and the other characters from 0x80 to 0xff were written as
    # `\xHH`, which bash makes a byte: `$'w\xa0pon'` came back as b"w\xa0pon", not UTF-8's c2 a0.
    words = [
        "Spotkanie w\u00a0poniedziałek",
        "a\u0085b",
        "soft\u00adhyphen",
        "line\nbreak\x7f",
        "\U0001f600\n",
    ]
    argv = ["holder", "-c", "input()", *words]
    with subprocess.Popen(argv, executable=sys.executable, stdin=subprocess.PIPE) as holder:
        try:
            # Right after the fork /proc may not yet show the new program's arguments (empty: None).
            said, deadline = None, time.monotonic() + 10
            while (said is None or "input()" not in said) and time.monotonic() < deadline:
                said = process_command(holder.pid)
                time.sleep(0.01)
        finally:
            holder.kill()
            holder.wait()
    assert said is not None and "\\xa0" not in said and "\\xc2" not in said, said
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    back = subprocess.run(["bash", "-c", f"printf '%s\\0' {said}"], capture_output=True, env=env, check=True)
    assert back.stdout.decode().split("\0")[:-1] == argv, (said, back.stdout)
