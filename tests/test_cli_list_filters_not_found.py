"""A list filtered by something that cannot exist says so, as `queue list --number notaphone` does
(exit 2), rather than an empty list and exit 0: `conversation list --number xyz` said "no
conversations", `premium answers KPZZZ` "no answers" for a service never added. The real CLI entry
point on a real SQLite file.
"""

from __future__ import annotations

from tests.test_account_show import CLI


def test_conversation_list_refuses_a_number_as_queue_list_does(cli: CLI) -> None:
    cli.ok("account", "add", "acme")  # the database made
    code, out, err = cli("queue", "list", "--number", "xyz")
    assert (code, out) == (2, []) and err.startswith("smsgw: --number 'xyz': a phone number only"), err
    assert cli("conversation", "list", "--number", "xyz") == (2, [], err)
    code, _, err = cli("conversation", "list", "--number", "12")
    assert code == 2 and err.startswith("smsgw: --number '12': too short"), err
    # A phone, and our own numbers, which the numbering plan may not know: found or not, no error.
    for number in ("601 123 456", "+48 100 200 300", "0048100200300", "7355"):
        assert cli.ok("conversation", "list", "--number", number) == ["no conversations"], number


def test_premium_answers_of_a_service_never_added_says_there_is_none(cli: CLI) -> None:
    cli.path.write_text(cli.path.read_text() + '\n[premium]\nnumbers = ["7355"]\n')
    cli.ok("account", "add", "acme")
    code, out, err = cli("premium", "answers", "KPzzz")
    assert (code, out, err) == (1, [], "smsgw: no premium service KPZZZ\n")
    code, _, err = cli("premium", "answers", "KP12")  # not a password at all: a usage error, as before
    assert code == 2, err
    cli.ok("premium", "add", "KP123", "--account", "acme", "--email", "votes@client.example")
    assert cli.ok("premium", "answers", "kp123") == ["no answers to premium SMS of KP123"]
    cli.ok("premium", "remove", "KP123")  # its answers stay listed: still known
    assert cli.ok("premium", "answers", "KP123") == ["no answers to premium SMS of KP123"]
    assert cli.ok("premium", "answers") == ["no answers to premium SMS"]


def test_a_number_as_a_mails_recipient_is_read_by_every_list_as_queue_list_reads_it(cli: CLI) -> None:
    # `conversation list` refused the @domain form `queue list` takes (exit 2), and `mo list` read it
    # as a sender ID and found nothing: one reading for all of them, the address's local part.
    cli.ok("account", "add", "acme")
    from gateway.config import parse_config
    from gateway.store.db import Store

    cfg = parse_config(cli.path.read_text(), source="test", base_dir=cli.path.parent)
    store = Store.open(cfg.db_path)
    store.mo.record_mo("main", "+48601123456", "+48100200300", "a phone's SMS", 0, None)
    store.close()
    for typed in ("601123456@sms.example.com", '"601 123 456"@sms.example.com', "+48 601 123 456"):
        assert cli.ok("queue", "list", "--number", typed) == ["no messages matching the filters"], typed
        assert cli.ok("conversation", "list", "--number", typed) == ["no conversations"], typed
        out = cli.ok("mo", "list", "--number", typed)
        assert len(out) == 1 and "+48601123456" in out[0], (typed, out)
    code, _, err = cli("conversation", "list", "--number", "xyz@sms.example.com")
    assert code == 2 and err.startswith("smsgw: --number 'xyz@sms.example.com': a phone number only"), err
