"""A message sent again (`queue retry`, the panel's Retry) is a new attempt: its parts show no time
of the last one.

The parts kept the last attempt's submit and done times: `queue show` and the panel showed a part
queued again as done before it went. The SMSC id stays until the next submit replaces it: it says
the SMSC took the message once (a premium answer's free SMS, the account's failure share).
"""

from __future__ import annotations

from pathlib import Path

from billing_reports import mtlate
from tests.test_conversations import World

ANNA = "anna@acme.example"

OLD_ID = "old-smsc-id"


def test_a_retried_part_keeps_nothing_of_its_last_attempt(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send(ANNA)
    conn = w.store.db.conn
    conn.execute(
        "UPDATE parts SET state = 'failed', link = 'main', smsc_id = ?, submitted_at = ?, done_at = ?,"
        " error = 'UNDELIV err:001'",
        (OLD_ID, w.now - 60, w.now - 30),
    )
    conn.execute("UPDATE messages SET state = 'failed', finished_at = ?", (w.now - 30,))
    (mid,) = conn.execute("SELECT id FROM messages").fetchone()
    assert w.store.admin.retry_message(mid, before_reset=mtlate.retried) == 1
    row = conn.execute("SELECT state, smsc_id, submitted_at, done_at, error FROM parts").fetchone()
    assert row == ("queued", OLD_ID, None, None, None)  # the id stays: the SMSC took it once
