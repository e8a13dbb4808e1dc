"""How a `maildir:` relay names its files: an outbox mail's re-send finds the file of its first send
(the same row and the same bytes), and nothing else is taken for it, also on a file system without
hard links. Real files in a real directory.
"""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.capturemail import OUTBOX_MAIL, CaptureMailer

ANSWER = (
    b"From: SMS gateway <gw@sms.example.com>\r\nTo: staff@acme.example\r\nSubject: SMS answer\r\n"
    b"Message-ID: <1.sms-reply@sms.example.com>\r\n\r\nTak, bede o 10:00\r\n"
)


def mails(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


async def send_as(mailer: CaptureMailer, mail_id: int, rcpt: str, content: bytes) -> None:
    OUTBOX_MAIL.set(mail_id)  # as the outbox worker's task for its send does
    await mailer.send("gw@sms.example.com", rcpt, content)


async def test_only_the_same_mail_of_the_same_row_is_taken_for_the_file_written(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    mailer = CaptureMailer(directory)
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", ANSWER))
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", ANSWER))  # its re-send
    assert len(mails(directory)) == 1
    # The same id handed out again after the newest rows were purged, for another mail: written.
    other = ANSWER.replace(b"Tak", b"Nie")
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", other))
    # The same mail queued twice (two rows): two mails.
    await asyncio.create_task(send_as(mailer, 8, "staff@acme.example", ANSWER))
    assert len(mails(directory)) == 3
    # A send from outside the outbox has no row: a file of its own each time.
    await mailer.send("gw@sms.example.com", "staff@acme.example", ANSWER)
    await mailer.send("gw@sms.example.com", "staff@acme.example", ANSWER)
    assert len(mails(directory)) == 5


async def test_a_file_name_keeps_maildirs_rules_whatever_the_recipient(tmp_path: Path) -> None:
    directory = tmp_path / "mail"
    mailer = CaptureMailer(directory)
    await asyncio.create_task(send_as(mailer, 3, "a:b/c@acme.example", ANSWER))
    (path,) = mails(directory)
    assert ":" not in path.name and path.name.startswith("00000003-")
    envelope = b"Return-Path: <gw@sms.example.com>\nDelivered-To: a:b/c@acme.example\n"
    assert path.read_bytes().startswith(envelope)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("refusal", [errno.EPERM, errno.EXDEV])
async def test_without_hard_links_a_mail_is_renamed_into_place_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: int
) -> None:
    # No file system without hard links can be mounted here (FAT, some network shares): `link`
    # refuses as theirs does.
    def no_links(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "link", no_links)
    directory = tmp_path / "mail"
    mailer = CaptureMailer(directory)
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", ANSWER))
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", ANSWER))  # its re-send
    other = ANSWER.replace(b"Tak", b"Nie")  # the id handed out again for another mail
    await asyncio.create_task(send_as(mailer, 7, "staff@acme.example", other))
    first, second = mails(directory)
    assert sorted(path.read_bytes().split(b"\r\n\r\n")[1] for path in (first, second)) == [
        b"Nie, bede o 10:00\r\n",
        b"Tak, bede o 10:00\r\n",
    ]
    assert not list(directory.glob(".*")), "a temporary file was left behind"
    assert first.stat().st_mode & 0o777 == 0o600
