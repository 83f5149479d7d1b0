"""HTTP_PROXY integrations: one request forwarded to an HTTP endpoint, its answer passed back.

It owns the forwarding (a worker thread with urllib, the integration's timeout, no redirects
followed, hop-by-hop headers dropped). It never decides routes or auth.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from hearth.urls.response import HttpAnswer

_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length",
                  "proxy-authenticate", "proxy-authorization", "te", "trailer"})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def loopback(url: str) -> tuple[str, str | None]:
    """`*.localhost` names are the loopback address (RFC 6761), as they are for a browser, though the
    system resolver may not know them (a function URL `http://<id>.lambda-url.<region>.localhost:port/`):
    the URL to connect to and the Host header to send (None when the URL is used as it is)."""
    parts = urllib.parse.urlsplit(url)
    name = (parts.hostname or "").lower()
    if not name.endswith(".localhost"):
        return url, None
    port = f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1{port}")), f"{parts.hostname}{port}"


async def forward(method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout: float) -> HttpAnswer:
    """The endpoint's answer; TimeoutError past `timeout`, OSError when it cannot be reached."""

    def call() -> HttpAnswer:
        target, host = loopback(url)
        request = urllib.request.Request(target, data=body or None, method=method)
        for k, v in headers:
            if k.lower() not in _HOP and not (host and k.lower() == "host"):
                request.add_header(k, v)
        if host:
            request.add_header("Host", host)
        try:
            with _OPENER.open(request, timeout=timeout) as resp:
                return HttpAnswer(resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP],
                                  resp.read())
        except urllib.error.HTTPError as err:
            return HttpAnswer(err.code, [(k, v) for k, v in err.headers.items() if k.lower() not in _HOP],
                              err.read())
        except TimeoutError as exc:
            raise TimeoutError(str(exc)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TimeoutError(str(exc)) from None
            raise OSError(str(exc.reason)) from None

    return await asyncio.to_thread(call)
