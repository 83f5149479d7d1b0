"""The per-request context handed to every provider operation."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Session:
    """What a temporary credential carries besides its keys (STS AssumeRole / GetSessionToken)."""

    role_arn: str | None  # None: a GetSessionToken session of a user or of the root
    role_id: str | None
    name: str  # the role session name
    policy: str | None  # the inline session policy (JSON), if any
    policy_arns: tuple[str, ...]  # managed session policies
    tags: tuple[tuple[str, str], ...]
    issued: float
    expires: float
    transitive: tuple[str, ...] = ()  # tag keys carried into sessions this one assumes (role chaining)
    source_arn: str | None = None  # a federated user's session: the user (or root) who asked for it


@dataclass(frozen=True)
class Principal:
    """Who signed the request: an access key that belongs to one account, and whose it is.

    `kind` is "root" (the account's admin keys: never subject to policies), "user" (an IAM user's
    long-term key, or its GetSessionToken session), "assumed-role" (an AssumeRole session) or
    "federated-user" (a GetFederationToken session).
    """

    access_key_id: str
    account_id: str
    kind: str = "root"
    arn: str = ""  # empty for the root: see `caller_arn`
    user_id: str = ""  # GetCallerIdentity's UserId (AIDA... for users, AROA...:session for roles)
    session: Session | None = None

    @property
    def caller_arn(self) -> str:
        return self.arn or f"arn:aws:iam::{self.account_id}:root"

    @property
    def is_root(self) -> bool:
        return self.kind == "root"


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
    scheme: str = "http"  # of the connection the request came on ("https" on the TLS listener)
    # Another account whose resource this request may use because that resource's policy allowed the
    # caller (decided by the gateway's authorizer before the operation runs); None: only its own.
    granted_owner: str | None = None

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def may_use(self, owner: str) -> bool:
        """Whether a resource owned by `owner` is the caller's own, or another account's that let it in."""
        return owner == self.principal.account_id or owner == self.granted_owner
