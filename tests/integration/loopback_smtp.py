"""A small SMTP server on 127.0.0.1 for tests: it stores every message it accepts.

It speaks the subset of SMTP that ``smtplib`` uses without authentication or
TLS (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It can be stopped and
started again on the same port, to test delivery while the server is down.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        self._reply("220 loopback ESMTP ready")
        sender, recipients = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command = raw.decode("ascii", "replace").strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-loopback\r\n250 8BITMIME\r\n")
            elif verb == "HELO":
                self._reply("250 loopback")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                self.server.store(sender, recipients, self._read_data())
                self._reply("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")

    def _read_data(self) -> bytes:
        lines = []
        while True:
            line = self.rfile.readline()
            if line in (b".\r\n", b".\n", b""):
                return b"".join(lines)
            if line.startswith(b".."):
                line = line[1:]
            lines.append(line)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, inbox: list[EmailMessage], lock: threading.Lock):
        super().__init__(("127.0.0.1", port), _Handler)
        self.inbox = inbox
        self.lock = lock

    def store(self, sender: str, recipients: list[str], data: bytes) -> None:
        message = message_from_bytes(data, policy=policy.default)
        with self.lock:
            self.inbox.append(message)  # type: ignore[arg-type]


class LoopbackSmtpServer:
    """Start with ``start()``, stop with ``stop()``; ``messages`` keeps what was received across restarts."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = _Server(self.port, self.messages, self._lock)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"smtp-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
