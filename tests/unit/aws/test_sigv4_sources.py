"""SigV4 with keys owned elsewhere (IAM users, STS sessions): inactive keys, session tokens, expiry."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from hearth.aws.context import Principal
from hearth.aws.keys import AccessKey, KeyStore
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier

ROOT = AccessKey("AKIAROOT000000000000", "root-secret", "000000000000")
NOW = time.time()


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    # Requests are signed with the real clock: NOW must be the test's own moment, not the module's import
    # (a long suite run put more than SigV4's 15 minutes between the two).
    global NOW
    NOW = time.time()


def _request(key_id: str, secret: str, token: str | None) -> SignedRequest:
    aws = AWSRequest(method="POST", url="http://127.0.0.1:4566/", data=b"Action=GetCallerIdentity",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    signer = SigV4Auth(Credentials(key_id, secret, token), "sts", "us-east-1")
    signer.add_auth(aws)
    headers = {k.lower(): v for k, v in aws.headers.items()}
    headers["host"] = urlsplit(aws.url).netloc
    return SignedRequest("POST", "/", "", headers, b"Action=GetCallerIdentity")


def _verifier(*keys: AccessKey) -> SigV4Verifier:
    by_id = {k.access_key_id: k for k in keys}
    return SigV4Verifier(KeyStore([], ROOT, sources=[by_id.get]), "sigv4", "000000000000", clock=lambda: NOW)


def test_a_source_key_signs_as_its_principal() -> None:
    user = Principal("AKIAUSER", "000000000000", kind="user", arn="arn:aws:iam::000000000000:user/u")
    key = AccessKey("AKIAUSER", "user-secret", "000000000000", principal=user)
    principal, _ = _verifier(key).verify(_request("AKIAUSER", "user-secret", None), {})
    assert principal == user and not principal.is_root


def test_an_inactive_key_is_refused() -> None:
    key = AccessKey("AKIAUSER", "user-secret", "000000000000", active=False)
    with pytest.raises(AuthFailure) as exc:
        _verifier(key).verify(_request("AKIAUSER", "user-secret", None), {})
    assert exc.value.for_protocol("query").code == "InvalidClientTokenId"


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_session_needs_its_own_token(token: str | None) -> None:
    key = AccessKey("ASIASESSION", "s-secret", "000000000000", session_token="the-token", expires=NOW + 60)
    with pytest.raises(AuthFailure) as exc:
        _verifier(key).verify(_request("ASIASESSION", "s-secret", token), {})
    assert exc.value.for_protocol("query").code == "InvalidClientTokenId"


def test_a_session_is_accepted_with_its_token_and_refused_once_expired() -> None:
    live = AccessKey("ASIASESSION", "s-secret", "000000000000", session_token="the-token", expires=NOW + 60)
    _verifier(live).verify(_request("ASIASESSION", "s-secret", "the-token"), {})
    expired = AccessKey("ASIASESSION", "s-secret", "000000000000", session_token="the-token", expires=NOW - 1)
    with pytest.raises(AuthFailure) as exc:
        _verifier(expired).verify(_request("ASIASESSION", "s-secret", "the-token"), {})
    err = exc.value.for_protocol("query")
    assert (err.code, err.message) == ("ExpiredToken", "The security token included in the request is expired")
