"""The per-request context handed to every provider operation."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """Who signed the request: an access key that belongs to one account."""

    access_key_id: str
    account_id: str


@dataclass
class RequestContext:
    """What a provider knows about the request besides its parsed parameters.

    `params` of an operation are passed separately, already parsed and validated against the
    operation's input shape, with the same structure a boto3 caller passes (blobs as bytes,
    timestamps as datetime).
    """

    service: str
    operation: str
    region: str
    principal: Principal
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    raw_body: bytes = b""
    source_ip: str = "127.0.0.1"

    @property
    def account_id(self) -> str:
        return self.principal.account_id
