"""The words of the monthly billing mails, English and Polish, built like `gateway.wording`'s.

Apart from the words of the mails about SMS because only `billing_reports.job` reads them, and they
follow the billing files (their columns and status words, which stay English) rather than the SMS.
"""

from __future__ import annotations

from gateway import polish
from gateway.wording import Counted, Language, Phrase

# --- billing mails (billing_reports.job); the file's columns and status words stay English, the
# mail's Polish ones are `polish.STATUS_PL` ---
BILLING_SUBJECT = Phrase("SMS billing {month}: {account}", "Rozliczenie SMS {month}: {account}")
# A file mailed again because its rows changed (a clock stepped back into the month, `--send --again`
# after a late report): two mails of one month with the same subject left the account to guess which
# one counts.
BILLING_SUBJECT_CORRECTED = Phrase(
    "SMS billing {month}: {account} (corrected)", "Rozliczenie SMS {month}: {account} (korekta)"
)
BILLING_REPLACES = Phrase(
    "This corrected file replaces the one mailed before{when}: rows of the month changed since.\n\n",
    "Ten poprawiony plik zastępuje plik wysłany wcześniej{when}: wiersze miesiąca zmieniły się od tego"
    " czasu.\n\n",
)
BILLING_SUMMARY_SUBJECT = Phrase(
    "SMS billing {month}: summary of {accounts} account(s)",
    "Rozliczenie SMS {month}: podsumowanie kont (liczba kont: {accounts})",
)
BILLING_HEAD = Phrase(
    "Billing of account {account} for {month} ({zone}, local midnight to local midnight).\n\n"
    "{sms} SMS, {parts} part(s): {counts}.\n",
    "Rozliczenie konta {account} za {month} ({zone}, od północy do północy czasu lokalnego).\n\n"
    "SMS-y: {sms}, części: {parts}; według stanu: {counts}.\n",
)
BILLING_COUNT = Counted(
    Phrase("{n} {status}", "{status} {n}"),
    lambda v: {"status": polish.STATUS_PL.get(v["status"], v["status"]), "n": polish.grouped(v["n"])},
)
# Net: a client reading "price 6.00 PLN" could not tell whether VAT was in it (the tariffs are net).
# English as the file writes amounts (`billing_reports.render.pln`), Polish as `polish.zloty`: "1 234,50 zł".
BILLING_MONEY = Phrase(
    "Premium SMS: price {price} PLN, commission {commission} PLN (net amounts, excluding VAT).\n",
    "SMS premium: cena {price}, prowizja {commission} (kwoty netto, bez VAT).\n",
)
BILLING_ATTACHED = Phrase("The attached file {name}", "Załączony plik {name}")
BILLING_ON_DISK = Phrase("The account's file", "Plik konta")
BILLING_FILE = Phrase(
    "{the_file} lists every SMS, tab-separated (UTF-8); its last\n"
    "line holds the number of SMS lines and a SHA-256 of everything before it.\n",
    "{the_file} zawiera każdy SMS, pola rozdzielone tabulatorami (UTF-8); ostatni\n"
    "wiersz podaje liczbę wierszy SMS-ów i sumę SHA-256 całej treści przed nim.\n",
)
# What became of each account's file when the summary was queued: "were mailed to each account's
# billing addresses" was said when most accounts had none (and got nothing), and before any mail left.
BILLING_SUMMARY_TEXT = Phrase(
    "The billing files of {month}, one mail per account, as queued for sending with this one:\n"
    "{fates}\n{the_summary} has a line per account.\n",
    "Pliki rozliczeniowe za {month}, po jednej wiadomości na konto, tak jak wstawiono je do kolejki"
    " wysyłki razem z tą:\n{fates}\n{the_summary} ma po jednym wierszu na konto.\n",
)
# Said when the summary has the line of premium SMS no service claimed: its `delivered` are votes
# mailed to the fallback address, which an operator reading "failed" took for paid SMS lost.
BILLING_SUMMARY_UNCLAIMED = Phrase(
    "Its line (premium MO without a service) counts as delivered the premium SMS no service claimed\n"
    "that were mailed to the fallback address, and as failed those no address took.\n",
    "Wiersz (premium MO without a service) liczy jako delivered (doręczone) SMS-y premium bez usługi\n"
    "wysłane na adres zapasowy, a jako failed (niedoręczone) te, których nie przyjął żaden adres.\n",
)


def summary_text(lang: Language, month: object, the_summary: str, fates: str, *, unclaimed: bool) -> str:
    """The summary mail's text; `unclaimed`: the summary has the line of premium SMS of no service."""
    said = BILLING_SUMMARY_TEXT(lang, month=month, the_summary=the_summary, fates=fates)
    return said + (BILLING_SUMMARY_UNCLAIMED(lang) if unclaimed else "")


BILLING_FATE_TO = Phrase(
    "- {account}: queued to {to} and to you", "- {account}: do wysłania na {to} i do operatora"
)
BILLING_FATE_OWN = Phrase(
    "- {account}: queued to you (its only billing address)",
    "- {account}: do wysłania do operatora (jego jedyny adres rozliczeniowy)",
)
BILLING_FATE_NOBODY = Phrase(
    "- {account}: no billing address: queued to you only, the account gets no mail",
    "- {account}: brak adresu rozliczeniowego: do wysłania tylko do operatora, konto nie dostaje pliku",
)
BILLING_FATE_BEFORE = Phrase(
    "- {account}: mailed before{when}, not queued again",
    "- {account}: wysłany wcześniej{when}, nie wysyłany ponownie",
)
BILLING_SUMMARY_ATTACHED = Phrase("The attached summary", "Załączone podsumowanie")
BILLING_SUMMARY_PLAIN = Phrase("The summary", "Podsumowanie")
BILLING_TOO_BIG = Counted(
    Phrase(
        "\nIt is too big to attach ({size:,} bytes; a mail is kept under {limit:,} bytes): it lies\n"
        "on the gateway at {path}\n",
        # No thousands commas in Polish, where a comma is the decimal mark ("10,000,000" read as 10).
        "\nPlik jest zbyt duży, by go załączyć ({size}; wiadomość musi mieć mniej niż {limit}):\n"
        "znajduje się na bramce w {path}\n",
    ),
    lambda v: {k: polish.counted(v[k], "bajt", "bajty", "bajtów") for k in ("size", "limit")},
)
