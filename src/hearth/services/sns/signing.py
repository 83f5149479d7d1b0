"""The key SNS signs its messages with, and the certificate subscribers verify them against.

It owns `<data_dir>/sns-signing/` (an RSA key, mode 0600, and its self-signed certificate, both made
once and kept across restarts) and AWS's signing rule: the listed fields of a message, each as
`name\\nvalue\\n` in alphabetical order, signed with RSA PKCS#1 v1.5 over SHA1 (SignatureVersion 1) or
SHA256 (SignatureVersion 2). The certificate is served at `/_hearth/sns/<cert_name>` (server.py), so
`SigningCertURL` points at Hearth itself. It never signs with, or pretends to hold, AWS's key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# The fields AWS signs, per message type (in this order: alphabetical).
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
CERT_PATH = "/_hearth/sns/"


class SigningKey:
    def __init__(self, data_dir: Path) -> None:
        folder = data_dir / "sns-signing"
        key_file, cert_file = folder / "key.pem", folder / "cert.pem"
        if not (key_file.exists() and cert_file.exists()):
            folder.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write(key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
            _write(cert_file, _self_signed(key).public_bytes(serialization.Encoding.PEM), 0o644)
        loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self._key = loaded
        self.cert_pem = cert_file.read_bytes()
        # Named like AWS's files (SimpleNotificationService-<hash>.pem), by the certificate's own digest.
        self.cert_name = f"SimpleNotificationService-{hashlib.sha256(self.cert_pem).hexdigest()[:32]}.pem"

    def cert_url(self, endpoint_url: str) -> str:
        return f"{endpoint_url}{CERT_PATH}{self.cert_name}"

    def sign(self, message: Mapping[str, str | None], fields: tuple[str, ...], version: str) -> str:
        text = "".join(f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None)
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        return base64.b64encode(self._key.sign(text.encode(), padding.PKCS1v15(), algorithm)).decode()


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.hearth.local")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Written whole and fsynced before it is used: a signing key must not be half there after a crash."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
