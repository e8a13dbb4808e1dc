"""Regenerate docs/dashboard.png and docs/message.png: the panel of a fresh gateway after some traffic.

Runs the real daemon with its built-in SMSC simulator in a temporary directory, sends a few mails
over SMTP, logs in as the first operator in headless Chromium (Debian's chromium + chromium-driver)
and saves the two pages. Usage: `python3 docs/screenshots.py` from the repository root.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import sys
import tempfile
import threading
from email.message import EmailMessage
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from gateway.config import parse_config
from gateway.daemon import Daemon
from gateway.web.server import INITIAL_PASSWORD_FILE

DOCS = Path(__file__).resolve().parent
MAILS = [
    ("601123456", "Meeting moved to 10:00, room 2.14. Bring the signed contract."),
    ("602234567", "Your parcel 4711 is ready for pickup until Friday."),
    ("603345613", "Server backup failed at 02:00, see ticket 881."),  # the simulator fails ...13
    ("604456789", "Zażółć gęślą jaźń: the Polish letters travel as UCS-2."),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path) -> str:
    smpp, cimd, control, smtp = _port(), _port(), _port(), _port()
    return f"""
[gateway]
domains = ["sms.example.com"]
state_dir = "{tmp}"
[smtp]
listen = "127.0.0.1:{smtp}"
submission_listen = "127.0.0.1:0"
[mail]
relay = "maildir:{tmp}/mail"
[web]
enabled = true
listen = "127.0.0.1:0"
[[smsc]]
name = "simulator"
type = "smpp"
port = {smpp}
system_id = "smsgw"
password = "secret"
[simulator]
enabled = true
smpp_port = {smpp}
cimd2_port = {cimd}
control_port = {control}
log = "{tmp}/simulator.jsonl"
[[account]]
name = "demo"
relay_networks = ["127.0.0.0/8"]
users = ["demo@example.com"]
"""


def _shoot(base: str, smtp_port: int, password: str) -> None:
    for number, text in MAILS:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "demo@example.com", f"{number}@sms.example.com", "Note"
        msg.set_content(text)
        with smtplib.SMTP("127.0.0.1", smtp_port) as client:
            client.send_message(msg)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(base + "/login")
        wait.until(ec.presence_of_element_located((By.ID, "email"))).send_keys("demo@example.com")
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login").click()
        wait.until(ec.presence_of_element_located((By.ID, "whoami")))

        def settled(d: webdriver.Chrome) -> bool:
            d.get(base + "/messages")
            text = d.find_element(By.ID, "messages").text
            return text.count("delivered") >= 2 and "failed" in text

        try:
            wait.until(settled)
        except Exception:
            print(driver.find_element(By.ID, "messages").text, file=sys.stderr)
            raise
        driver.get(base + "/")
        driver.save_screenshot(str(DOCS / "dashboard.png"))
        driver.get(base + "/messages/1")
        wait.until(ec.text_to_be_present_in_element((By.ID, "state"), "delivered"))
        driver.save_screenshot(str(DOCS / "message.png"))
    finally:
        driver.quit()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config(_config(Path(tmp)), source="screenshots", base_dir=Path(tmp))
        daemon, stop = Daemon(cfg), asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.wait_for(daemon.ready.wait(), 20)
        try:
            password = (Path(tmp) / INITIAL_PASSWORD_FILE).read_text().strip()
            base = f"http://127.0.0.1:{daemon.web.port}"
            await asyncio.to_thread(_shoot, base, daemon.smtp_port, password)
        finally:
            stop.set()
            await task
    print("wrote", DOCS / "dashboard.png", "and", DOCS / "message.png", file=sys.stderr)


if __name__ == "__main__":
    assert threading.current_thread() is threading.main_thread()
    asyncio.run(main())
