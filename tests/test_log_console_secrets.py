"""The relay password kept out of the console log too (`smsgw run` in a terminal): the console
renders a traceback itself, after every field was masked, and an exception whose message echoed the
password (a relay's reply to MAIL quoting it) reached the terminal as it was, where the JSON log of
the same line masked it.

A real process: the gateway's logging configured for the console, its stderr read back as a
terminal would show it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.test_process import ROOT

PASSWORD = "s3cret-Relay-pw"

_SCRIPT = textwrap.dedent(
    f"""
    import logging
    import structlog
    from gateway import logging as gwlog
    from gateway.secretmask import secret_forms

    gwlog.configure(json=False)
    gwlog.hide_values("worker", secret_forms([{PASSWORD!r}]))
    word = "".join(reversed({PASSWORD[::-1]!r}))  # never whole in a source line the traceback quotes
    try:
        raise RuntimeError("550 5.7.1 not as " + word)
    except RuntimeError as exc:
        structlog.get_logger("gateway.outboxworker").error("outbox.failed", exc_info=exc)
        logging.getLogger("aiosmtplib").error("a library's line", exc_info=exc)
    """
)


def test_the_console_log_masks_the_relay_password_in_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    said = done.stderr
    assert said.count("RuntimeError: 550 5.7.1 not as ***") == 2, said
    assert PASSWORD not in said, said
