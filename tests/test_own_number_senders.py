"""An answer to our own number the numbering plan does not know (the shipped +48100200300, written
"48100200300" or "100200300" by the SMSC) is matched to the default sender or an account's sender
(`handlers.own_number_as_stored`). Every account's sender went through `digit_forms` (the
phonenumbers metadata) and a scan of accounts for each such MO, inside the write on the loop:
thousands of accounts made it milliseconds an answer. The senders' forms are now kept while the
settings stand; the reading stays `own_form`'s, held to it here over random numbers."""

from __future__ import annotations

import random
from pathlib import Path

from gateway.config import parse_config
from gateway.conversations.handlers import own_number_as_stored
from gateway.conversations.numbers import own_form, own_form_indexed, own_index
from gateway.conversations.repo import ConversationsRepo
from tests.conftest import config_text
from tests.test_cimd2_sub_address_cost import ACCOUNTS, PHONE, _events, _steps


def test_an_answer_to_a_sender_reads_the_accounts_once_while_the_settings_stand(tmp_path: Path) -> None:
    events, conn = _events(tmp_path)
    cfg = parse_config(config_text(tmp_path, smsc_port=1), source="test", base_dir=tmp_path)
    repo = ConversationsRepo(events.store.db, events.store.clock)
    assert own_number_as_stored(repo, cfg, PHONE, "48100301234") == "+48100301234"  # an account's
    for written, ours in (("48100302345", "+48100302345"), ("100200300", "+48100200300")):
        found, steps = _steps(conn, lambda w=written: own_number_as_stored(repo, cfg, PHONE, w))
        assert found == ours
        assert steps < ACCOUNTS // 10, (written, steps)  # the phone's conversations only


def test_the_kept_reading_is_own_forms() -> None:
    rng = random.Random(7)
    shapes = ("+48100{:06d}", "48100{:06d}", "0048100{:06d}", "100{:06d}", "0{:08d}", "+4930{:07d}", "ACME{}")
    for region in ("PL", "DE", "GB"):
        for _ in range(300):
            own = [rng.choice(shapes).format(rng.randrange(40)) for _ in range(rng.randrange(1, 12))]
            address = rng.choice(shapes).format(rng.randrange(40))
            kept = own_form_indexed(address, own_index(own, region), region)
            assert kept == own_form(address, own, region), (address, own, region)
