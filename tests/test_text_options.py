"""Per-account text choices through real SMTP (R-1.4, R-1.5, R-1.9): what the SMSC receives."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from smsc.encoding import parse_udh
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

POLISH = "Spotkanie przełożone na środę, proszę potwierdzić obecność."


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


async def test_transliteration_keeps_polish_text_in_gsm(tmp_path: Path) -> None:
    # transliterate = on: ą ę ł ó ś ż become a e l o s z and the SMS stays GSM 03.38 (160 chars).
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", transliterate=1))
        await gw.send(mail(to("601123456"), POLISH))
        await smsc.wait_for(1)
        assert smsc.received[0].data_coding == 0
        assert smsc.received[0].text == "Spotkanie przelozone na srode, prosze potwierdzic obecnosc."


async def test_separate_mode_sends_independent_sms(tmp_path: Path) -> None:
    # split_mode = separate: 200 GSM characters become two plain SMS (160 + 40), no UDH.
    text = ("abcdefghij" * 20)[:200]
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", split_mode="separate"))
        await gw.send(mail(to("601123456"), text))
        await smsc.wait_for(2)
        assert [s.udh for s in smsc.received] == [b"", b""]
        assert sorted(len(s.text) for s in smsc.received) == [40, 160]


async def test_overflow_reject_refuses_texts_over_ten_parts(tmp_path: Path) -> None:
    # overflow = reject: a text needing more than 10 parts is refused whole at DATA.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", overflow="reject"))
        res = await gw.send(mail(to("601123456"), "word " * 400))
        assert getattr(res.error, "smtp_code", None) == 554
        assert gw.store.admin.count_messages() == 0
        # The limit is the gateway's, and the sender learns how much to cut: GSM text first,
        # then UCS-2, where ten parts hold far less.
        assert res.error.smtp_error.decode() == (  # type: ignore[union-attr]
            "5.3.4 Text too long: 1999 characters; the gateway sends at most 10 SMS parts per mail,"
            " which hold the first 1530 characters of this text"
        )
        res = await gw.send(mail(to("601123456"), "ą" * 700))
        assert res.error.smtp_error.decode().endswith(  # type: ignore[union-attr]
            "700 characters; the gateway sends at most 10 SMS parts per mail, which hold the first 670"
            " characters of this text"
        )


async def test_overflow_truncates_to_ten_parts_and_tells_the_sender(tmp_path: Path) -> None:
    # Default: the first 10 parts go, and the sender is told by email where the text was cut.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            body = " ".join(f"w{i:04d}" for i in range(400))  # 2,399 characters
            await gw.send(mail(to("601123456"), body))
            await smsc.wait_for(10)
            udhs = [parse_udh(s.udh) for s in smsc.received]
            assert {u.total for u in udhs if u} == {10}
            await sink.wait(1)
            notice = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
            assert "shortened" in str(notice["Subject"])
            sent = "".join(s.text for s in sorted(smsc.received, key=lambda s: parse_udh(s.udh).seq))  # type: ignore[union-attr]
            assert body.startswith(sent)
            lost = body[len(sent) :].strip()[:30]
            assert lost and lost in notice.get_body().get_content()  # where it was cut is quoted back


async def test_confirmation_names_parts_encoding_and_cuts(tmp_path: Path) -> None:
    # with confirm = on, the sender learns parts and encoding per recipient, and why.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=1))
            body = POLISH + "\n\n-- \nAnna Nowak\nACME"
            await gw.send(mail([to("601123456"), to("601123457")], body), [to("601123456"), to("601123457")])
            await sink.wait(1)
            text = (
                email.message_from_bytes(sink.messages[0][2], policy=policy.default).get_body().get_content()
            )
            # Numbers whose SMS are alike share a line: a mail to 50 numbers stays short.
            assert "  +48601123456, +48601123457: 1 SMS part each (2 in all), UCS-2" in text, text
            assert "forced UCS-2" in text
            assert "signature" in text
