"""SMTP goes out encrypted (issue 14, item 7): STARTTLS required by default, implicit TLS on request, plain text only
when `CAMPAIGN_SMTP_TLS=none` says so; the server's certificate is verified (here a self-signed one made for the
test, trusted through `ca_file`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notices.channels import DeliveryError, SmtpChannel
from notices.dispatch import open_channel
from states.errors import BadInput
from states.settings import load_settings
from tests.notify.smtp import free_port, serving

x509 = pytest.importorskip("cryptography.x509")


class Recorder:
    """Records each message it accepts and whether its session was encrypted."""

    def __init__(self) -> None:
        self.received: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((session.ssl is not None, envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for this test: (cert, key)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "office@example.org", "m@example.org", "测试"
    msg.set_content("正文")
    return msg


def channel(port: int, tls: str, ca_file: Path | None = None, user: str | None = None) -> SmtpChannel:
    return SmtpChannel(
        "127.0.0.1", port, user, "secret" if user else None, "office@example.org", timeout=5, tls=tls,
        ca_file=str(ca_file) if ca_file else None,
    )


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, tls_context=server_context(certificate), require_starttls=True
    )
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def test_starttls_is_the_default_and_a_server_without_it_gets_nothing() -> None:
    recorder = Recorder()
    with serving(recorder) as port:
        plain = SmtpChannel("127.0.0.1", port, None, None, "office@example.org", timeout=5)
        assert plain.tls == "starttls"
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            plain.send("k:1", message())
        plain.close()
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):  # nor a password, ever
            channel(port, "starttls", user="office").send("k:2", message())
        assert recorder.received == []
        explicit = channel(port, "none")  # plain text only when asked for
        explicit.send("k:3", message())
        explicit.close()
    assert [encrypted for encrypted, _ in recorder.received] == [False]


def test_starttls_upgrades_and_verifies_the_certificate(
    starttls_server: tuple[Recorder, int], certificate: tuple[Path, Path]
) -> None:
    recorder, port = starttls_server
    untrusted = channel(port, "starttls")  # the system's CAs do not know this self-signed certificate
    with pytest.raises(DeliveryError, match="(?i)certificate"):
        untrusted.send("k:1", message())
    untrusted.close()
    assert recorder.received == []
    trusted = channel(port, "starttls", ca_file=certificate[0])
    trusted.send("k:2", message())
    trusted.close()
    assert [encrypted for encrypted, _ in recorder.received] == [True]


def test_implicit_tls_on_request(certificate: tuple[Path, Path]) -> None:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, ssl_context=server_context(certificate))
    controller.start()
    try:
        tls = channel(port, "ssl", ca_file=certificate[0])
        tls.send("k:1", message())
        tls.close()
        with pytest.raises(DeliveryError):  # a plain-text client gets no answer it understands
            channel(port, "none").send("k:2", message())
    finally:
        controller.stop()
    assert len(recorder.received) == 1


def test_the_setting_reaches_the_channel_and_a_bad_one_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_channel(load_settings(), "smtp").tls == "starttls"  # type: ignore[union-attr]
    monkeypatch.setenv("CAMPAIGN_SMTP_TLS", "ssl")
    assert open_channel(load_settings(), "smtp").tls == "ssl"  # type: ignore[union-attr]
    monkeypatch.setenv("CAMPAIGN_SMTP_TLS", "plain")
    with pytest.raises(BadInput, match="CAMPAIGN_SMTP_TLS") as caught:
        load_settings()
    assert "\n" not in str(caught.value)
