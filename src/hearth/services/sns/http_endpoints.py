"""Posting SNS messages to HTTP(S) subscribers: the subscription confirmation and the notifications.

It owns the one POST per message, sent in the background so that Publish and Subscribe never wait
on a remote host (AWS answers before it delivers to HTTP endpoints too). It never retries (AWS's
delivery policy with its backoff is not implemented) and never raises to the caller: a failure is
logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request

log = logging.getLogger(__name__)

TIMEOUT_S = 15.0  # AWS gives an HTTP endpoint 15 seconds to answer


class HttpPoster:
    """Fire-and-forget POSTs; `close()` waits for none of them (they end by their timeout)."""

    def __init__(self, timeout: float = TIMEOUT_S) -> None:
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()  # held so that the loop does not drop them

    def post(self, url: str, body: str, headers: dict[str, str]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._post(url, body, headers))
        except RuntimeError:  # no running loop (a synchronous caller): nothing to post from
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, body: str, headers: dict[str, str]) -> None:
        try:
            await asyncio.to_thread(self._send, url, body.encode(), headers)
        except (OSError, ValueError) as exc:
            self.failed += 1
            log.info("sns: POST to %s failed: %s", url, exc)
        else:
            self.sent += 1

    def _send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "text/plain; charset=UTF-8", **headers})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()
