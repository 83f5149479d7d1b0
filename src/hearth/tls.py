"""Hearth's local certificate authority and its HTTPS server certificate, made at first start.

It owns `<data_dir>/tls/` (the CA's and the server's private keys and the server certificate, readable
by the owner only) and `<data_dir>/ca/ca.pem` (the CA certificate alone, which clients trust through
AWS_CA_BUNDLE / NODE_EXTRA_CA_CERTS / SSL_CERT_FILE). The CA lasts ten years; the server certificate
one year and is made again when it is missing, near its end, or does not name the hosts asked for.
It never serves anything and never sends a key anywhere.

Why: real bucket and queue policies deny requests whose `aws:SecureTransport` is false; with HTTPS,
Hearth can evaluate them as AWS does.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path  # public: what clients trust
    server_cert: Path
    server_key: Path


def ensure_tls(data_dir: Path, hosts: Sequence[str]) -> TlsFiles:
    """The CA and a server certificate for `hosts` (names and IP addresses), made if needed."""
    private = data_dir / "tls"
    public = data_dir / "ca"
    private.mkdir(parents=True, exist_ok=True, mode=0o700)
    public.mkdir(parents=True, exist_ok=True, mode=0o755)
    files = TlsFiles(public / "ca.pem", private / "server.pem", private / "server-key.pem")
    ca_key_path = private / "ca-key.pem"
    if not ca_key_path.exists() or not files.ca_cert.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hearth local CA")])
        now = _now()
        ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .sign(ca_key, hashes.SHA256()))
        _write(ca_key_path, _key_pem(ca_key), 0o600)
        _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        files.server_cert.unlink(missing_ok=True)
    if _server_cert_current(files.server_cert, hosts):
        return files
    ca_key_loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key_loaded, ec.EllipticCurvePrivateKey)
    ca_cert_loaded = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else "localhost")]))
            .issuer_name(ca_cert_loaded.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key_loaded, hashes.SHA256()))
    _write(files.server_key, _key_pem(key), 0o600)
    _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o600)
    return files


def default_hosts(bind_host: str) -> list[str]:
    """Names a local client uses: localhost (and function URLs' `*.localhost`), loopback addresses, the bind host."""
    hosts = ["localhost", "*.localhost", "127.0.0.1", "::1"]
    if bind_host not in hosts and bind_host not in ("0.0.0.0", "::"):
        hosts.append(bind_host)
    return hosts


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def _server_cert_current(path: Path, hosts: Sequence[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    if cert.not_valid_after_utc - _now() < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(_alt_names(hosts)) <= set(names)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, and never readable by others before its mode is set."""
    fd, tmp = tempfile.mkstemp(prefix=".tls-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
