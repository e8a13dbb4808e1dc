"""What Outlook writes around a meeting, and two kinds of mail whose text the gateway cannot read.

- Teams' join block ("Microsoft Teams meeting / Join on your computer… / Meeting ID / Passcode /
  Download Teams | Join on the web…" between two 80-underscore rules) made an invitation of one
  sentence 4 billed parts; classic Outlook's "When: … (UTC+01:00) Belgrade, Bratislava… / Where: … /
  Note: The GMT offset above… / *~*~*~*~*" header 2. The invitation's calendar part gives the time and
  place; the phone gets the sentence and them, in one part.
- "-----Original Appointment-----" (a forwarded meeting) was no forward separator: with nothing typed
  above it the forwarded description was lost, as "-----Original Message-----" keeps it.
- Outlook's rights-protected mail (Encrypt, Do Not Forward: message.rpmsg) sent its "has sent you a
  protected message. Open the message…" notice as 2 parts; it is refused as encrypted mail is.
- Opaque-signed S/MIME (`smime-type=signed-data`) was refused as encrypted ("send it unencrypted"):
  the refusal now says what is wrong and what to change in Outlook.

The .eml files in tests/data/outlook_meetings are those mails as Outlook sends them (S/MIME made by
openssl's smime). read_mail() directly, then a real SMTP client to a running daemon whose simulator
records what the phone got. Each rule has a twin where what a person wrote is kept.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest

from gateway.smtp.intake import IntakeRefused, read_mail
from gateway.smtp.replies import ENCRYPTED, RIGHTS_PROTECTED, SIGNED_OPAQUE
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway, smtp_sink
from tests.test_cut_from import daemon_config
from tests.test_intake import mail
from tests.test_text_from_clients import ics, outlook_invite

DATA = Path(__file__).parent / "data" / "outlook_meetings"
WHEN = "2026-12-07 10:00, Sala 204"  # what tests.test_text_from_clients.ics() says, in Europe/Warsaw
TEAMS_PL = """Proszę przygotować dane za IV kwartał.

________________________________________________________________________________
Spotkanie w aplikacji Microsoft Teams
Dołącz na komputerze, w aplikacji mobilnej lub na urządzeniu w sali
Kliknij tutaj, aby dołączyć do spotkania<https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0>
Identyfikator spotkania: 312 456 789 012
Kod dostępu: Ab3dEf
Pobierz aplikację Teams<https://www.microsoft.com/pl-pl/microsoft-teams/download-app> | Dołącz w sieci Web<https://www.microsoft.com/microsoft-teams/join-a-meeting>
Dowiedz się więcej<https://aka.ms/JoinTeamsMeeting> | Opcje spotkania<https://teams.microsoft.com/meetingOptions/>
________________________________________________________________________________
"""
# Teams' newer block: a shorter rule inside, before the dial-in numbers.
TEAMS_NEW = """Agenda w załączniku.

________________________________________________________________________________
Microsoft Teams Need help?<https://aka.ms/JoinTeamsMeeting?omkt=en-US>
Join the meeting now<https://teams.microsoft.com/l/meetup-join/19%3ameeting_y%40thread.v2/0>
Meeting ID: 312 456 789 012
Passcode: Ab3dEf
________________________________
Dial in by phone
+48 22 123 45 67,,123456789# Poland, Warsaw
Find a local number<https://dialin.teams.microsoft.com/>
Phone conference ID: 123 456 789#
For organizers: Meeting options<https://teams.microsoft.com/meetingOptions/> | Reset dial-in PIN
________________________________________________________________________________
"""
ZOOM = """Omówimy budżet.

Jan Kowalski is inviting you to a scheduled Zoom meeting.
Join Zoom Meeting
https://us02web.zoom.us/j/81234567890?pwd=abc

Meeting ID: 812 3456 7890
Passcode: 123456
"""

WEBEX = """Omówimy budżet.

When it's time, join the Webex meeting here.

Join meeting<https://acme.webex.com/acme/j.php?MTID=m1234>

More ways to join:

Join by meeting number
Meeting number (access code): 2730 123 4567
Meeting password: abc123
"""


def read(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"Demo User <demo@example.com>", STAFF.encode())


def refusal(raw: bytes) -> str:
    with pytest.raises(IntakeRefused) as refused:
        read_mail(raw)
    return refused.value.reply


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("13_invite_teams.eml", "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204"),
        ("13b_invite_teams_only.eml", "Budget meeting: 2026-12-07 10:00, Room 204"),
        ("14_invite_classic.eml", "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204"),
        (
            "04b_meeting_forward_empty.eml",
            "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204",
        ),
        # No calendar part: the forwarded When and Where are the only time and place, without the cities.
        (
            "17b_appt_forward_text_only.eml",
            "Budget meeting: When: Monday, December 7, 2026 10:00 AM-11:00 AM\nWhere: Room 204\n\n"
            "Please bring the Q4 figures.",
        ),
    ],
)
def test_outlooks_meeting_boilerplate_stays_off_the_phone(name: str, text: str) -> None:
    assert read_mail(read(name)).text == text


@pytest.mark.parametrize("body", [TEAMS_PL, TEAMS_NEW, ZOOM, WEBEX])
def test_join_blocks_in_polish_newer_teams_and_zoom_are_cut(body: str) -> None:
    m = read_mail(outlook_invite(body, ics()))
    first = body.split("\n", 1)[0]
    assert m.text == f"Narada budżetowa: {first}\n{WHEN}"
    assert "online meeting join details" in m.removed


def test_a_join_block_in_an_ordinary_mail_goes_too() -> None:
    assert (
        read_mail(mail(TEAMS_PL, subject="Spotkanie")).text
        == "Spotkanie: Proszę przygotować dane za IV kwartał."
    )


@pytest.mark.parametrize(
    "body",
    [
        "Microsoft Teams\nnie działa od rana, Meeting ID: 312 456 789 w zgłoszeniu.\n",  # no rule, no heading
        "Microsoft Teams meeting tomorrow, Meeting ID: 312 456 789 012\n",  # a sentence, not a heading
        "________________________________________________________________________________\n"
        "Microsoft Teams padł, wszyscy na telefon.\n",  # a rule, but nothing only a join block holds
    ],
)
def test_what_a_person_writes_about_teams_is_kept(body: str) -> None:
    assert read_mail(mail(body, subject="Awaria")).body == body.strip()


def test_a_persons_own_when_and_where_lines_in_an_invitation_are_kept() -> None:
    body = "When: po obiedzie\nWhere: kuchnia\n\nPrzynieście kubki."
    assert read_mail(outlook_invite(body, ics())).text == f"Narada budżetowa: {body}\n{WHEN}"


def test_polish_outlooks_forwarded_appointment_keeps_the_description() -> None:
    body = (
        "-----Oryginalny termin-----\nOd: Jan Kowalski <jan@acme.example>\n"
        "Wysłano: piątek, 4 grudnia 2026 16:12\nDo: Anna Nowak\nTemat: Narada budżetowa\n\n"
        "Proszę przygotować dane za IV kwartał.\n"
    )
    assert read_mail(mail(body, subject="PD: Narada budżetowa")).text == (
        "Narada budżetowa: Proszę przygotować dane za IV kwartał."
    )


def test_text_above_an_original_appointment_is_the_message() -> None:
    body = (
        "Idziesz?\n\n-----Original Appointment-----\nFrom: Jan <jan@acme.example>\nSent: Fri\nTo: A\n\nOpis"
    )
    m = read_mail(mail(body, subject="FW: Budget meeting"))
    assert m.text == "Budget meeting: Idziesz?"


def test_unreadable_protection_is_refused_with_its_own_reason() -> None:
    assert refusal(read("15_irm_rpmsg.eml")) == RIGHTS_PROTECTED
    assert refusal(read("12_signed_opaque.eml")) == SIGNED_OPAQUE
    assert refusal(read("12_encrypted.eml")) == ENCRYPTED
    # Without smime-type (older clients) the ContentInfo's own type says which it is.
    no_param = read("12_signed_opaque.eml").replace(b" smime-type=signed-data;", b"")
    assert refusal(no_param) == SIGNED_OPAQUE
    no_param = read("12_encrypted.eml").replace(b" smime-type=enveloped-data;", b"")
    assert refusal(no_param) == ENCRYPTED


async def test_the_phone_gets_one_part_per_meeting_and_protected_mail_is_refused(tmp_path: Path) -> None:
    relay = free_port()
    cfg, _ = daemon_config(tmp_path, relay)
    to = [f"601123450@{DOMAIN}"]
    expected = [
        ("13_invite_teams.eml", "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204"),
        ("13b_invite_teams_only.eml", "Budget meeting: 2026-12-07 10:00, Room 204"),
        ("14_invite_classic.eml", "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204"),
        (
            "04b_meeting_forward_empty.eml",
            "Budget meeting: Please bring the Q4 figures.\n2026-12-07 10:00, Room 204",
        ),
    ]
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for n, (name, _text) in enumerate(expected, 1):
            # A phone each: the mails share Outlook's Thread-Index, and a conversation's phone gets a
            # follow-up without its subject.
            phone = [f"60112345{n}@{DOMAIN}"]
            assert (await gw.send(read(name), phone, sender=STAFF)).error is None, name
            await gw.until(lambda n=n: len(core.records) >= n)
        for name, reply in (("15_irm_rpmsg.eml", RIGHTS_PROTECTED), ("12_signed_opaque.eml", SIGNED_OPAQUE)):
            error = (await gw.send(read(name), to, sender=STAFF)).error
            assert isinstance(error, smtplib.SMTPDataError), name
            assert f"{error.smtp_code} {error.smtp_error.decode()}" == reply
        await asyncio.sleep(0.3)  # a further part would have come by now
        got = {r["destination"]: r["text"] for r in core.records}
        assert len(core.records) == len(expected)  # one part each
        assert got == {f"+4860112345{n}": text for n, (_name, text) in enumerate(expected, 1)}
