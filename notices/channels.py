"""Delivery channels for built notices: `.eml` files in an outbox directory, or SMTP."""

from __future__ import annotations

import copy
import email
import email.policy
import hashlib
import os
import smtplib
import ssl
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

# CRLF on disk as on the wire: RFC 5322 lines end in CRLF, and a file then means the same as the message sent.
_FILE_POLICY = EmailMessage().policy.clone(linesep="\r\n")


class DeliveryError(Exception):
    """Raised when a channel could not deliver a message; the notice stays queued and is tried again.

    `permanent` is true for a 5xx reply, which a retry will not change (a mailbox that does not exist).
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Undeliverable(Exception):
    """Raised by SMTP for a message without a recipient address: mark the notice undeliverable, not failed."""


class Channel(Protocol):
    """What the dispatcher needs of a channel."""

    def send(self, key: str, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


def safe_filename(key: str) -> str:
    """A deterministic file name for a key: the same key, the same file (delivery stays idempotent).

    Only a digest of the exact key: a key names the recipient, the event and its subject (who is stuck, who is
    admonished), and a directory listing, a backup's index or a sync tool's log must not say so."""
    return f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.eml"


def _fsync_directory(directory: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a directory; its renames are journalled anyway
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileChannel:
    """Writes each message to `<outbox_dir>/<safe name of the key>.eml`, atomically; the same key, the same file.

    `send` makes one message durable (file and directory fsync) before it returns. A batch goes faster with
    `submit` (serialise now; write, fsync and rename the file on a small thread pool, so the disk works while the
    next message is rendered) and then one `sync`: it waits for the batch's files and fsyncs the directory once,
    and only after it returns are the batch's renames durable — the dispatcher records them as delivered then.
    """

    def __init__(self, outbox_dir: Path, writers: int = 8) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        self._writers = writers
        self._pool: ThreadPoolExecutor | None = None

    def path_for(self, key: str) -> Path:
        return self.outbox_dir / safe_filename(key)

    def _write(self, key: str, data: bytes) -> None:
        target = self.path_for(key)
        # The temporary name starts with a dot and does not end in .eml, so nobody picks up a half-written file;
        # os.replace then swaps it in whole, and a resend of the key replaces rather than adds.
        fd, tmp_name = tempfile.mkstemp(dir=self.outbox_dir, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException as error:
            Path(tmp_name).unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise DeliveryError(f"cannot write {target.name}: {error.strerror or error}") from error
            raise

    def send(self, key: str, message: EmailMessage) -> None:
        self._write(key, message.as_bytes(policy=_FILE_POLICY))
        # The dispatcher records the notice as delivered once send() returns: make the rename itself durable.
        self.sync()

    def submit(self, key: str, message: EmailMessage | bytes) -> Future[None]:
        """Start writing one message (or its CRLF bytes) of a batch; it is durable only once `sync` has returned."""
        data = message if isinstance(message, bytes) else message.as_bytes(policy=_FILE_POLICY)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._writers, thread_name_prefix="outbox")
        return self._pool.submit(self._write, key, data)

    def sync(self) -> None:
        """Make every rename done so far durable: one fsync of the outbox directory."""
        try:
            _fsync_directory(self.outbox_dir)
        except OSError as error:
            raise DeliveryError(f"cannot sync {self.outbox_dir}: {error.strerror or error}") from error

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _one_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(text.split())


def _reason(error: Exception) -> tuple[str, bool]:
    """A one-line reason for an SMTP failure, and whether it is permanent (a 5xx reply)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        return f"recipient refused: {code} {_one_line(reply)}", code >= 500
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"sender refused: {error.smtp_code} {_one_line(error.smtp_error)}", error.smtp_code >= 500
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_one_line(error.smtp_error)}", error.smtp_code >= 500
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"server disconnected: {_one_line(str(error)) or 'connection closed'}", False
    if isinstance(error, TimeoutError):
        return "timed out", False
    if isinstance(error, OSError):
        return _one_line(error.strerror or str(error)) or type(error).__name__, False
    return _one_line(str(error)) or type(error).__name__, False


def _seven_bit(message: EmailMessage) -> EmailMessage:
    """A copy whose UTF-8 parts are quoted-printable, for a server that does not announce 8BITMIME."""
    converted = copy.deepcopy(message)
    for part in converted.walk():
        if part.is_multipart() or part.get("Content-Transfer-Encoding", "7bit").lower() != "8bit":
            continue
        content = part.get_content()
        part.set_content(content, subtype=part.get_content_subtype(), charset="utf-8", cte="quoted-printable")
    return converted


TLS_MODES = ("starttls", "ssl", "none")


class SmtpChannel:
    """Sends each message over one SMTP connection, opened on first use and reopened after a failure.

    `tls`: `starttls` (the default) requires the server to offer STARTTLS and upgrades before anything is sent;
    `ssl` speaks TLS from the first byte (port 465); `none` sends in clear, only where it is asked for (a local
    relay). Certificates are verified against the system's CAs, or `ca_file` (an office's own CA)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        sender: str,
        timeout: float = 30.0,
        tls: str = "starttls",
        ca_file: str | None = None,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"CAMPAIGN_SMTP_TLS is one of {', '.join(TLS_MODES)}, not {tls!r}")
        self.host = host
        self.port = port
        self.user = user or None
        self.password = password or ""
        self.sender = sender
        self.envelope_sender = parseaddr(sender)[1] or sender
        self.timeout = timeout
        self.tls = tls
        self.ca_file = ca_file or None
        self._connection: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self) -> smtplib.SMTP:
        connection: smtplib.SMTP
        if self.tls == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.tls == "starttls":
                # Required, not opportunistic: a server (or a man in the middle) that does not offer it gets nothing.
                if not connection.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server does not offer STARTTLS (CAMPAIGN_SMTP_TLS=starttls requires it; "
                        "ssl for implicit TLS, none only for a local relay)"
                    )
                connection.starttls(context=self._context())
                connection.ehlo()
            if self.user:
                connection.login(self.user, self.password)
        except BaseException:
            connection.close()
            raise
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _transmit(self, connection: smtplib.SMTP, message: EmailMessage, recipients: list[str]) -> None:
        if not connection.has_extn("8bitmime"):
            connection.send_message(_seven_bit(message), self.envelope_sender, recipients)
        elif all(address.isascii() for address in (self.envelope_sender, *recipients)):
            # The bodies are 8-bit UTF-8 (readable in the file outbox); declare it, as RFC 6152 asks.
            connection.send_message(
                message, self.envelope_sender, recipients, mail_options=("BODY=8BITMIME",)
            )
        else:
            # smtplib declares SMTPUTF8 and 8BITMIME itself for non-ASCII addresses.
            connection.send_message(message, self.envelope_sender, recipients)

    def send(self, key: str, message: EmailMessage) -> None:
        """Send one message; raise `DeliveryError` (one-line reason) on any SMTP failure."""
        recipients = [addr for _, addr in getaddresses(message.get_all("To", [])) if addr]
        if not recipients:
            raise Undeliverable(f"{key}: the recipient has no e-mail address")
        self._deliver(lambda connection: self._transmit(connection, message, recipients))

    def send_bytes(self, key: str, data: bytes, recipients: list[str]) -> None:
        """Send a message already serialised (CRLF, 8-bit UTF-8 bodies) to `recipients` (ASCII addresses).

        A server that does not announce 8BITMIME gets the parsed message, quoted-printable, as `send` would send it.
        """
        if not recipients:
            raise Undeliverable(f"{key}: the recipient has no e-mail address")

        def transmit(connection: smtplib.SMTP) -> None:
            if connection.has_extn("8bitmime"):
                connection.sendmail(self.envelope_sender, recipients, data, mail_options=("BODY=8BITMIME",))
            else:
                parsed = email.message_from_bytes(data, policy=email.policy.default)
                self._transmit(connection, parsed, recipients)  # type: ignore[arg-type]

        self._deliver(transmit)

    def _deliver(self, transmit: Callable[[smtplib.SMTP], None]) -> None:
        reused = self._connection is not None
        try:
            if self._connection is None:
                self._connection = self._connect()
            try:
                transmit(self._connection)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # A connection kept across a batch may have been closed by the server while idle: one fresh try.
                # (Should the server have taken the message after all, the stable Message-ID marks the duplicate.)
                self._drop()
                self._connection = self._connect()
                transmit(self._connection)
        except (smtplib.SMTPException, OSError) as error:
            reason, permanent = _reason(error)
            refused = isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused)
            if not refused or getattr(error, "smtp_code", None) == 421:
                # After anything but a plain refusal the session's state is unknown: start afresh next time.
                self._drop()
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {reason}", permanent=permanent) from error

    def close(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self._drop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
