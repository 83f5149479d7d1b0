"""Digests of object bodies: ETags (MD5, AWS's multipart form), Content-MD5 and x-amz-checksum-*.

It owns computing them incrementally while a body streams to disk and the checks AWS makes
(InvalidDigest, BadDigest). It never reads files itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Any, Protocol

from hearth.aws.errors import AwsError

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

# The length of each algorithm's binary digest: a declared value of another length is malformed.
_DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}


class _Digest(Protocol):
    def update(self, data: bytes) -> None: ...
    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


class _Crc32c:
    """CRC32C (Castagnoli) in pure Python: correct but slow (a few MB/s); only computed when a client
    asks for it."""

    def __init__(self) -> None:
        self.value = 0xFFFFFFFF

    def update(self, data: bytes) -> None:
        crc, table = self.value, _CRC32C
        for b in data:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        self.value = crc

    def digest(self) -> bytes:
        return (self.value ^ 0xFFFFFFFF).to_bytes(4, "big")


def _crc64nvme_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x9A6C9329AC4BC9B5 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64NVME = _crc64nvme_table()


class _Crc64Nvme:
    """CRC-64/NVME (reflected, all-ones init and final xor), the SDKs' default checksum; pure
    Python like CRC32C above."""

    def __init__(self) -> None:
        self.value = 0xFFFFFFFFFFFFFFFF

    def update(self, data: bytes) -> None:
        crc, table = self.value, _CRC64NVME
        for b in data:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        self.value = crc

    def digest(self) -> bytes:
        return (self.value ^ 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def new_digest(algorithm: str) -> _Digest:
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        return _Crc32()
    if algorithm == "CRC32C":
        return _Crc32c()
    if algorithm == "CRC64NVME":
        return _Crc64Nvme()
    if algorithm == "SHA1":
        return hashlib.sha1()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise AwsError("InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with any of "
                                     "the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]", 400)


class BodyDigests:
    """MD5 (the ETag) plus the x-amz-checksum-* algorithms a request asked for, updated per chunk."""

    def __init__(self, algorithms: set[str]) -> None:
        self.md5 = hashlib.md5()
        self.extra: dict[str, _Digest] = {a: new_digest(a) for a in algorithms}

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        for d in self.extra.values():
            d.update(data)

    def checksums(self) -> dict[str, str]:
        return {a: base64.b64encode(d.digest()).decode() for a, d in self.extra.items()}


def expected_md5(header: str | None) -> bytes | None:
    """Content-MD5 decoded; InvalidDigest when it is not a base64 MD5."""
    if header is None:
        return None
    try:
        raw = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise AwsError("InvalidDigest", "The Content-MD5 you specified was invalid.", 400,
                       fields={"Content-MD5": header})
    return raw


def check_md5(expected: bytes | None, actual: bytes, header: str | None) -> None:
    if expected is not None and expected != actual:
        raise AwsError("BadDigest", "The Content-MD5 you specified did not match what we received.", 400,
                       fields={"ExpectedDigest": header, "CalculatedDigest": base64.b64encode(actual).decode()})


def check_declared(algorithm: str, value: str) -> None:
    """A declared x-amz-checksum-* value must be the base64 of a digest of the algorithm's size."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != _DIGEST_SIZES.get(algorithm.upper(), len(raw)):
        raise AwsError("InvalidRequest", f"Value for x-amz-checksum-{algorithm.lower()} header is invalid.", 400)


def check_checksums(declared: dict[str, str], computed: dict[str, str]) -> None:
    for algorithm, value in declared.items():
        if computed.get(algorithm) != value:
            raise AwsError("BadDigest", f"The {algorithm} you specified did not match the calculated checksum.",
                           400)


def multipart_etag(part_md5s: list[bytes]) -> str:
    """AWS's ETag of a completed multipart upload: MD5 of the parts' binary MD5s, dash, part count."""
    return f'"{hashlib.md5(b"".join(part_md5s)).hexdigest()}-{len(part_md5s)}"'


def checksum_type(meta: dict[str, Any]) -> str:
    """COMPOSITE when the stored checksum is a checksum of the parts' checksums (its value ends
    in `-<part count>`, which base64 never contains), else FULL_OBJECT."""
    values = (meta.get("Checksums") or {}).values()
    return "COMPOSITE" if any("-" in str(v) for v in values) else "FULL_OBJECT"
