"""A real SMTP server for tests (aiosmtpd), on a free local port."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import Message

from aiosmtpd.controller import Controller

from tests.processes import free_port


class Recorder:
    """Keeps every accepted message; can refuse recipients with a given SMTP reply."""

    def __init__(self):
        self.messages: list[Message] = []
        self.refuse_with: str | None = None  # e.g. "550 5.1.1 no such user" or "451 try later"
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self, port: int | None = None, recorder: Recorder | None = None):
        self.port = port or free_port()
        self.recorder = recorder or Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.recorder.messages

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
