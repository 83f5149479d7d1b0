"""The local CA: made once, its keys private, the server certificate re-made only when it must be."""

from __future__ import annotations

import ssl
from pathlib import Path

from hearth.tls import default_hosts, ensure_tls


def test_ca_and_server_certificate(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path, default_hosts("127.0.0.1"))
    assert (tmp_path / "tls" / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert files.server_key.stat().st_mode & 0o077 == 0
    context = ssl.create_default_context(cafile=str(files.ca_cert))  # the CA is loadable as a trust anchor
    context.load_cert_chain(str(files.server_cert), str(files.server_key))  # and the pair matches
    first = files.server_cert.read_bytes()
    assert ensure_tls(tmp_path, default_hosts("127.0.0.1")).server_cert.read_bytes() == first
    again = ensure_tls(tmp_path, default_hosts("10.1.2.3"))  # a new host needs a new certificate
    assert again.server_cert.read_bytes() != first
    assert again.ca_cert.read_bytes() == files.ca_cert.read_bytes()  # from the same CA
