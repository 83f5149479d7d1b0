"""The benchmark's raw client signs requests Hearth's own SigV4 verifier accepts."""

from __future__ import annotations

import pytest

from hearth.aws.keys import AccessKey, KeyStore
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier
from hearth.bench.rawclient import SignedClient

KEY = AccessKey("AKIAHEARTHTEST000000", "secret-0000000000000000000000000000000000", "000000000000")


def _verify(client: SignedClient, path: str, body: bytes, query: str = "", secret: str = KEY.secret_access_key
            ) -> None:
    headers = {k.lower(): v for k, v in client.sign("POST", path, body, query).items()}
    keys = KeyStore([AccessKey(KEY.access_key_id, secret, KEY.account_id)], KEY)
    verifier = SigV4Verifier(keys, "sigv4", KEY.account_id)
    verifier.verify(SignedRequest("POST", path, query, headers, body), {})


def test_a_signed_invoke_verifies() -> None:
    client = SignedClient("http://127.0.0.1:1", "lambda", KEY.access_key_id, KEY.secret_access_key)
    _verify(client, "/2015-03-31/functions/bench-echo/invocations", b"{}", "Qualifier=1")
    _verify(client, "/", b'{"QueueUrl": "q"}')  # the cached signing key signs the next request as well


def test_a_wrong_secret_does_not_verify() -> None:
    client = SignedClient("http://127.0.0.1:1", "lambda", KEY.access_key_id, "not-the-secret")
    with pytest.raises(AuthFailure):
        _verify(client, "/2015-03-31/functions/f/invocations", b"{}")
