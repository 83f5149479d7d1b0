"""Presigned-like download URLs for function code (GetFunction's Code.Location).

It owns the HMAC secret in <data_dir>/code-url.key (0600, generated once), the URL format
`{endpoint}/_hearth/code/<account>/<sha hex>?expires=<unix>&signature=<hex>` and the download
handler. A URL is valid for `EXPIRY_S` seconds and only for the account and archive it names; it
carries no credentials. It never decides who may get a URL (GetFunction's caller owns the function).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import time
import urllib.parse
from pathlib import Path

from hearth.store.blobs import BlobStore

EXPIRY_S = 600
KEY_FILE = "code-url.key"
_PATH = re.compile(r"/_hearth/code/(?P<account>\d{12})/(?P<sha>[0-9a-f]{64})")


class CodeUrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def load(cls, data_dir: Path) -> CodeUrlSigner:
        path = data_dir / KEY_FILE
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except FileNotFoundError:
            pass
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret.hex())
            f.flush()
            os.fsync(f.fileno())
        return cls(secret)

    def _sign(self, account: str, sha: str, expires: int) -> str:
        return hmac.new(self._secret, f"{account}/{sha}/{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, endpoint: str, account: str, sha: str, *, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + EXPIRY_S)
        query = urllib.parse.urlencode({"expires": expires, "signature": self._sign(account, sha, expires)})
        return f"{endpoint}/_hearth/code/{account}/{sha}?{query}"

    def verify(
        self, account: str, sha: str, expires: str, signature: str, *, now: float | None = None
    ) -> str | None:
        """None when valid; otherwise the S3-style error code to answer."""
        if not expires.isdigit():
            return "AccessDenied"
        if not hmac.compare_digest(self._sign(account, sha, int(expires)), signature):
            return "SignatureDoesNotMatch"
        if int(expires) < (now if now is not None else time.time()):
            return "AccessDenied"
        return None


_MESSAGES = {
    "AccessDenied": "Request has expired",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided.",
    "NoSuchKey": "The specified key does not exist.",
}


def _s3_error(status: int, code: str, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message or _MESSAGES[code]}</Message></Error>"
    )
    return status, {"content-type": "application/xml"}, body.encode()


async def serve_code_download(
    signer: CodeUrlSigner, blobs: BlobStore, path: str, query: str
) -> tuple[int, dict[str, str], bytes]:
    """Answer GET /_hearth/code/<account>/<sha>?expires=..&signature=.."""
    match = _PATH.fullmatch(path)
    if match is None:
        return _s3_error(404, "NoSuchKey")
    params = urllib.parse.parse_qs(query)
    expires = (params.get("expires") or [""])[0]
    signature = (params.get("signature") or [""])[0]
    if not expires or not signature:
        return _s3_error(
            403, "AccessDenied", "Query-string authentication requires the signature and expires parameters"
        )
    refused = signer.verify(match["account"], match["sha"], expires, signature)
    if refused is not None:
        return _s3_error(403, refused)
    try:
        body = await asyncio.to_thread(blobs.read, match["sha"])
    except FileNotFoundError:
        return _s3_error(404, "NoSuchKey")
    return 200, {"content-type": "application/zip"}, body
