"""The benchmarks' raw HTTP client: one keep-alive `http.client` connection, SigV4-signed by hand.

It owns the measuring client of `hearth bench`. Why not boto3: botocore spends about a millisecond of
its own per call (endpoint resolution, serialisation, hooks, signing through its event system), which is
more than the warm invoke being measured; a ratio against a baseline measured through the same boto3
client is diluted towards 1. This client signs with a cached signing key and a precomputed header block,
so the figure is the server's round trip plus a few tens of microseconds, identical for Hearth and for the
echo baseline (both get the same signed request shape).

It never retries, never follows redirects and never parses the body: the caller reads what it needs.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import time
from urllib.parse import quote, urlsplit

# Region and service every benchmark signs for; the echo app ignores the signature, Hearth checks it.
REGION = "us-east-1"


class SignedClient:
    """Requests over one keep-alive HTTP/1.1 connection, each signed with SigV4 for `service`.

    The signing key depends on the day only: it is derived once per UTC date, as a real SDK would
    cache it, so the per-call signing cost is two SHA-256 digests and one HMAC."""

    def __init__(self, endpoint: str, service: str, access_key: str, secret_key: str,
                 region: str = REGION, timeout: float = 120.0) -> None:
        parts = urlsplit(endpoint)
        self.host = parts.netloc
        self.service = service
        self.region = region
        self._access_key = access_key
        self._secret = secret_key
        self._timeout = timeout
        self._key_date = ""
        self._key = b""
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)

    def _signing_key(self, date: str) -> bytes:
        if date != self._key_date:
            key = ("AWS4" + self._secret).encode()
            for part in (date, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key_date, self._key = date, key
        return self._key

    def sign(self, method: str, path: str, body: bytes, query: str = "") -> dict[str, str]:
        """The headers that make `method path?query` with `body` a valid SigV4 request (host, date, auth)."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        date = amz_date[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        # botocore's SigV4Auth quotes the path twice for every service but S3; for the plain names the
        # benchmarks use both passes leave it unchanged, but the canonical form must still be built so.
        canonical_path = quote(quote(path, safe="/~"), safe="/~")
        canonical = (f"{method}\n{canonical_path}\n{query}\nhost:{self.host}\nx-amz-date:{amz_date}\n\n"
                     f"host;x-amz-date\n{payload_hash}")
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(date), to_sign.encode(), hashlib.sha256).hexdigest()
        return {"Host": self.host, "X-Amz-Date": amz_date,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                                 f"SignedHeaders=host;x-amz-date, Signature={signature}"}

    def request(self, method: str, path: str, body: bytes = b"", query: str = "",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One signed request; (status, headers, body). Reconnects once when the server closed the
        kept-alive connection between two calls (a server restart in the soak benchmark)."""
        signed = self.sign(method, path, body, query)
        if headers:
            signed.update(headers)
        target = f"{path}?{query}" if query else path
        for attempt in (0, 1):
            try:
                self._conn.request(method, target, body=body, headers=signed)
                response = self._conn.getresponse()
                data = response.read()
                return response.status, dict(response.getheaders()), data
            except (ConnectionError, http.client.HTTPException, OSError):
                self._conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def invoke(self, function: str, payload: bytes = b"{}", qualifier: str | None = None,
               invocation_type: str | None = None) -> tuple[int, bytes]:
        """Lambda's Invoke through the rest-json path: (status, response body)."""
        query = f"Qualifier={quote(qualifier, safe='')}" if qualifier else ""
        extra = {"Content-Type": "application/json"}
        if invocation_type:
            extra["X-Amz-Invocation-Type"] = invocation_type
        status, _, body = self.request("POST", f"/2015-03-31/functions/{function}/invocations", payload, query,
                                       extra)
        return status, body

    def close(self) -> None:
        self._conn.close()
