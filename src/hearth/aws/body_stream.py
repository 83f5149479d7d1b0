"""A request body read as a stream (S3 object uploads), never buffered whole.

It owns turning the ASGI `receive` messages of one request into the payload's bytes, chunk by chunk:
decoding `Content-Encoding: aws-chunked` framing (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD` with its
per-chunk signatures, the `…-TRAILER` forms and `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with trailing
`x-amz-checksum-*` headers), checking the declared `x-amz-content-sha256` of a signed payload and
the declared decoded length. A failed check raises `AwsError` from the iteration — after the last
byte at the latest — so a consumer that commits only when the iteration ends never commits a body
that did not verify. It never writes anything anywhere and never decides what the body is for.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hearth.aws.errors import AwsError

Receive = Callable[[], Awaitable[dict[str, Any]]]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_MAX_CHUNK_HEADER = 4096


@dataclass(frozen=True)
class ChunkSigning:
    """What verifies the signature of each aws-chunked chunk: the request's seed signature and key."""

    signing_key: bytes
    amz_date: str
    scope: str  # `20240101/us-east-1/s3/aws4_request`
    seed_signature: str


def incomplete_body() -> AwsError:
    return AwsError("IncompleteBody", "You did not provide the number of bytes specified by the "
                                      "Content-Length HTTP header", 400)


def _signature_mismatch() -> AwsError:
    return AwsError("SignatureDoesNotMatch", "The request signature we calculated does not match the signature "
                                             "you provided. Check your key and signing method.", 403)


def _malformed() -> AwsError:
    return AwsError("IncompleteBody", "The request body's aws-chunked encoding is malformed", 400)


class BodyStream:
    """Async-iterable payload of one request. Iterate it once; `trailers` is filled at the end."""

    def __init__(self, receive: Receive, *, content_sha256: str | None, chunked: bool,
                 decoded_length: int | None, signing: ChunkSigning | None = None,
                 first: bytes = b"") -> None:
        self._receive = receive
        self._sha256 = content_sha256 if content_sha256 and len(content_sha256) == 64 else None
        self._chunked = chunked
        self._decoded_length = decoded_length
        self._signing = signing
        self._first = first
        self._consumed = False
        self.trailers: dict[str, str] = {}
        self.length = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("a request body can be read once")
        self._consumed = True
        return self._decoded() if self._chunked else self._plain()

    async def drain(self) -> None:
        """Read (and drop) what is left, so the connection can be reused after an early answer."""
        if not self._consumed:
            self._consumed = True
            async for _ in self._raw():
                pass

    async def _raw(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise incomplete_body()
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def _plain(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256() if self._sha256 else None
        async for chunk in self._raw():
            if digest is not None:
                digest.update(chunk)
            self.length += len(chunk)
            yield chunk
        if self._decoded_length is not None and self.length != self._decoded_length:
            raise incomplete_body()
        if digest is not None and self._sha256 is not None and digest.hexdigest() != self._sha256.lower():
            raise AwsError("XAmzContentSHA256Mismatch",
                           "The provided 'x-amz-content-sha256' header does not match what was computed.", 400,
                           fields={"ClientComputedContentSHA256": self._sha256,
                                   "S3ComputedContentSHA256": digest.hexdigest()})

    async def _decoded(self) -> AsyncIterator[bytes]:
        buf = bytearray()
        raw = self._raw()
        previous = self._signing.seed_signature if self._signing else ""
        ended = False

        async def fill() -> bool:
            try:
                buf.extend(await anext(raw))
                return True
            except StopAsyncIteration:
                return False

        while True:
            # The chunk header: `<hex size>[;chunk-signature=<sig>]\r\n`.
            while (end := buf.find(b"\r\n")) < 0:
                if len(buf) > _MAX_CHUNK_HEADER or not await fill():
                    raise _malformed()
            header = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 2]
            size_text, _, ext = header.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                raise _malformed() from None
            signature = ext.partition("chunk-signature=")[2].strip() if ext else ""
            remaining = size
            digest = hashlib.sha256() if self._signing else None
            while remaining:
                if not buf and not await fill():
                    raise incomplete_body()
                piece = bytes(buf[:remaining])
                del buf[:len(piece)]
                remaining -= len(piece)
                if digest is not None:
                    digest.update(piece)
                self.length += len(piece)
                # Data of a signed chunk is handed on before its signature is checked: the check
                # fails the iteration at the chunk's end, before any consumer can commit.
                yield piece
            if self._signing is not None:
                assert digest is not None
                previous = self._check_chunk(previous, signature, digest.hexdigest())
            if size == 0:
                ended = True
                break
            while len(buf) < 2:
                if not await fill():
                    raise _malformed()
            if bytes(buf[:2]) != b"\r\n":
                raise _malformed()
            del buf[:2]
        if ended:
            await self._read_trailers(buf, fill, previous)
        if self._decoded_length is not None and self.length != self._decoded_length:
            raise incomplete_body()

    async def _read_trailers(self, buf: bytearray, fill: Callable[[], Awaitable[bool]], previous: str) -> None:
        # After the final chunk: optional `name:value\r\n` trailer lines, then an empty line.
        while await fill():
            pass
        text = bytes(buf).decode("latin-1")
        signed_lines: list[str] = []
        trailer_signature: str | None = None
        for line in text.split("\r\n"):
            if not line.strip():
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "x-amz-trailer-signature":
                trailer_signature = value.strip()
            else:
                self.trailers[name] = value.strip()
                signed_lines.append(f"{name}:{value.strip()}\n")
        if self._signing is not None and trailer_signature is not None:
            string_to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", self._signing.amz_date, self._signing.scope,
                                        previous, hashlib.sha256("".join(signed_lines).encode()).hexdigest()])
            expected = hmac.new(self._signing.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, trailer_signature.lower()):
                raise _signature_mismatch()

    def _check_chunk(self, previous: str, provided: str, data_sha256: str) -> str:
        assert self._signing is not None
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", self._signing.amz_date, self._signing.scope,
                                    previous, EMPTY_SHA256, data_sha256])
        expected = hmac.new(self._signing.signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not provided or not hmac.compare_digest(expected, provided.lower()):
            raise _signature_mismatch()
        return expected
