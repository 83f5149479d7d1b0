"""What providers share: the operation-name convention and raw responses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def method_name(operation: str) -> str:
    """`CreateFunction` -> `create_function`, `ListTagsForResource` -> `list_tags_for_resource`."""
    return _CAMEL.sub("_", operation).lower()


@dataclass
class RawResponse:
    """A response the provider renders itself (payload blobs, event streams, downloads).

    `body` may be bytes or an async iterator of chunks (streamed to the client as produced).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | AsyncIterator[bytes] = b""
