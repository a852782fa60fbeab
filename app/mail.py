"""Email: notifications sent through SMTP with the booking as a calendar entry (DESIGN §13).

``SMTP_URL`` names the server: ``smtp://user:pass@host:port`` upgrades with STARTTLS when the
server offers it, ``smtps://`` speaks TLS from the first byte. Without it mail is disabled, which
``/readyz`` reports. A mail server that is down never holds up a booking: mail is sent by the
delivery job after the change committed, and what could not be sent is tried again later with a
growing delay (``app.delivery``). Bodies are plain text and HTML from ``templates/mail/``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import Settings

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "mail"
#: Seconds an SMTP connection or command may take before the attempt counts as failed.
TIMEOUT = 10.0
#: How long ``/readyz`` trusts its last look at the mail server.
HEALTH_TTL = 30.0

_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
)


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool

    @classmethod
    def parse(cls, url: str) -> Server:
        parts = urlsplit(url)
        implicit = parts.scheme == "smtps"
        assert parts.hostname is not None  # checked by app.config
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
        )


@dataclass(frozen=True)
class Letter:
    """One mail to write: to whom, what, and the calendar entry to attach."""

    to: str
    title: str
    body: str
    booking_url: str | None
    ics: bytes | None = None
    ics_method: str = "REQUEST"
    ics_name: str = "booking.ics"


class Mailer:
    def __init__(self, url: str, sender: str, *, timeout: float = TIMEOUT) -> None:
        self.server = Server.parse(url)
        self.sender = sender
        self.timeout = timeout
        self._healthy: tuple[float, bool] | None = None

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    def compose(self, letter: Letter) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = letter.to
        message["Subject"] = letter.title
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender_address.partition("@")[2] or None)
        values = {
            "title": letter.title,
            "body": letter.body,
            "booking_url": letter.booking_url,
            "attached": letter.ics_name if letter.ics else None,
        }
        message.set_content(_templates.get_template("notification.txt").render(values))
        message.add_alternative(_templates.get_template("notification.html").render(values), subtype="html")
        if letter.ics is not None:
            message.add_attachment(
                letter.ics,
                maintype="text",
                subtype="calendar",
                filename=letter.ics_name,
                params={"method": letter.ics_method},
            )
        return message

    def _client(self) -> aiosmtplib.SMTP:
        server = self.server
        return aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=None if not server.implicit_tls else False,  # None: STARTTLS when offered
            timeout=self.timeout,
        )

    async def send(self, letters: list[Letter]) -> list[bool]:
        """Send over one connection; whether each went. A server that cannot be reached (or
        refuses us) raises, and nothing was sent."""
        if not letters:
            return []
        results = []
        try:
            async with self._client() as smtp:
                for letter in letters:
                    try:
                        await smtp.send_message(self.compose(letter))
                        results.append(True)
                    except aiosmtplib.SMTPRecipientsRefused:
                        log.warning("mail to %s refused by the server", letter.to)
                        results.append(False)
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            self._healthy = (time.monotonic(), False)
            raise
        self._healthy = (time.monotonic(), True)
        return results + [False] * (len(letters) - len(results))

    async def healthy(self) -> bool:
        """Whether the mail server answers: the last send's outcome, else a fresh look (a
        connection and QUIT) at most every ``HEALTH_TTL`` seconds."""
        if self._healthy is not None and time.monotonic() - self._healthy[0] < HEALTH_TTL:
            return self._healthy[1]
        try:
            async with self._client():
                ok = True
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            ok = False
        self._healthy = (time.monotonic(), ok)
        return ok


def create_mailer(settings: Settings) -> Mailer | None:
    return Mailer(settings.smtp_url, settings.mail_from) if settings.smtp_url else None
