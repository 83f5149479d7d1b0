"""AWS Signature Version 4 verification (Authorization header and presigned query strings).

It owns the canonical request as botocore builds it and the answer to "who signed this?". It never
parses operation parameters and never logs secrets or signatures.

Failures raise `AuthFailure` (an `AwsError` with Lambda's rest-json codes); `for_protocol` renames the
code for json/query services, which spell the same failures differently.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote, unquote_plus

from hearth.aws.context import Principal
from hearth.aws.errors import AwsError
from hearth.aws.keys import KeyStore
from hearth.config import AuthMode

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW_S = 15 * 60
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# Services whose signer does not re-encode the path (botocore's S3SigV4Auth).
_NO_DOUBLE_ENCODE = frozenset({"s3", "s3-object-lambda", "s3express"})

MISSING = "missing"
INCOMPLETE = "incomplete"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"  # a presigned URL past its expiry (S3 tells it apart from a bad signature)
TOKEN_EXPIRED = "token_expired"  # temporary credentials past their expiry (STS sessions)
SKEWED = "skewed"  # a header-signed request too far from the server's clock
MISSING_V2 = "missing_v2"  # an incomplete signature-version-2 query string

BAD_SIGNATURE_TEXT = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
UNKNOWN_KEY_TEXT = "The security token included in the request is invalid."
EXPIRED_TEXT = "The security token included in the request is expired"

# kind -> (rest-json code, json code, query code, status)
_CODES: dict[str, tuple[str, str, str, int]] = {
    MISSING: ("MissingAuthenticationTokenException", "MissingAuthenticationToken",
              "MissingAuthenticationToken", 403),
    INCOMPLETE: ("IncompleteSignatureException", "IncompleteSignatureException", "IncompleteSignature", 403),
    UNKNOWN_KEY: ("UnrecognizedClientException", "UnrecognizedClientException", "InvalidClientTokenId", 403),
    BAD_SIGNATURE: ("InvalidSignatureException", "InvalidSignatureException", "SignatureDoesNotMatch", 403),
    TOKEN_EXPIRED: ("ExpiredTokenException", "ExpiredTokenException", "ExpiredToken", 403),
    EXPIRED: ("InvalidSignatureException", "InvalidSignatureException", "SignatureDoesNotMatch", 403),
    SKEWED: ("InvalidSignatureException", "InvalidSignatureException", "SignatureDoesNotMatch", 403),
    MISSING_V2: ("MissingAuthenticationTokenException", "MissingAuthenticationToken",
                 "MissingAuthenticationToken", 403),
}

# kind -> (S3 code, status, S3 message or None to keep the failure's own)
_S3_CODES: dict[str, tuple[str, int, str | None]] = {
    MISSING: ("AccessDenied", 403, "Access Denied"),
    MISSING_V2: ("AccessDenied", 403, None),
    INCOMPLETE: ("AuthorizationHeaderMalformed", 400, None),
    UNKNOWN_KEY: ("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."),
    BAD_SIGNATURE: ("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the "
                                                  "signature you provided. Check your key and signing method."),
    EXPIRED: ("AccessDenied", 403, "Request has expired"),
    TOKEN_EXPIRED: ("ExpiredToken", 400, None),
    SKEWED: ("RequestTimeTooSkewed", 403, "The difference between the request time and the current time is "
                                          "too large."),
}


class AuthFailure(AwsError):
    """A request that is not (correctly) signed by a known key."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(_CODES[kind][0], message, _CODES[kind][3])
        self.kind = kind

    def for_protocol(self, protocol: str) -> AwsError:
        if protocol == "rest-xml":
            code, s3_status, text = _S3_CODES[self.kind]
            return AwsError(code, text or self.message, s3_status, fields=self.fields)
        rest, json_, query, status = _CODES[self.kind]
        if protocol in ("query", "ec2"):
            code = query
        elif protocol == "json":
            code = json_
        else:
            code = rest
        message = self.message
        if self.kind == MISSING and protocol != "rest-json":
            message = "Request is missing Authentication Token"
        return AwsError(code, message, status)


@dataclass(frozen=True)
class Credential:
    """The credential scope: `AKID/20240101/us-east-1/lambda/aws4_request`."""

    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str  # as sent on the wire (still percent-encoded)
    query_string: str  # raw, as sent
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ","
    body: bytes
    # The body is streamed after the signature check (S3 uploads): its declared
    # x-amz-content-sha256 is trusted here and checked by the stream as it is read.
    body_deferred: bool = False


@dataclass(frozen=True)
class Verified:
    """Who signed a request, and what verifies the rest of it (aws-chunked chunk signatures)."""

    principal: Principal
    cred: Credential
    amz_date: str
    signature: str
    signing_key: bytes | None  # None when nothing was verified (--auth any)


def parse_credential(value: str) -> Credential | None:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        return None
    return Credential(parts[0], parts[1], parts[2], parts[3])


def parse_authorization(header: str) -> dict[str, str]:
    """`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...` -> its three parameters.

    Raises AuthFailure(INCOMPLETE) with AWS's texts for a malformed header.
    """
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthFailure(INCOMPLETE, f"Unsupported AWS 'algorithm': '{algorithm}'")
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise AuthFailure(
                INCOMPLETE,
                f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{header}'.",
            )
        params[name.strip()] = value.strip()
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if name not in params]
    if missing:
        text = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise AuthFailure(INCOMPLETE, f"{text} Authorization={header}")
    return params


def peek_credential(headers: dict[str, str], query: dict[str, str]) -> Credential | None:
    """The credential scope of a request without verifying it (the gateway routes by its service)."""
    auth = headers.get("authorization")
    if auth and auth.startswith(ALGORITHM):
        start = auth.find("Credential=")
        if start >= 0:
            end = auth.find(",", start)
            return parse_credential(auth[start + 11: end if end >= 0 else None].strip())
        return None
    value = query.get("X-Amz-Credential")
    return parse_credential(value) if value else None


@lru_cache(maxsize=1024)  # a warm invoke signs the same path every call: normalise and quote it once
def canonical_path(raw_path: str, service: str) -> str:
    if service in _NO_DOUBLE_ENCODE:
        return raw_path or "/"
    return quote(_remove_dot_segments(raw_path or "/"), safe="/~")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if out:
                out.pop()
        elif seg and seg != ".":
            out.append(seg)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last


def canonical_query(query_string: str, *, drop_signature: bool = False, plus_as_space: bool = False) -> str:
    """The canonical query string; `plus_as_space` reads a '+' on the wire as a space (form encoding)."""
    decode = unquote_plus if plus_as_space else unquote
    pairs: list[tuple[str, str]] = []
    for item in query_string.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        key = quote(decode(key), safe="-_.~")
        if drop_signature and key == "X-Amz-Signature":
            continue
        pairs.append((key, quote(decode(value), safe="-_.~")))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_headers(headers: dict[str, str], signed: list[str]) -> str:
    if ":authority" in signed and ":authority" not in headers:
        # Over HTTP/2 the AWS SDK for JavaScript signs the :authority pseudo-header where HTTP/1.1 has
        # Host; the ASGI scope carries it as `host` (hearth.http2), as AWS's endpoints accept it.
        headers = {**headers, ":authority": headers.get("host", "")}
    return "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed)


@lru_cache(maxsize=256)  # the key changes once a day per (secret, region, service): skip 4 HMACs
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def string_to_sign(cred: Credential, amz_date: str, canonical_request: str) -> str:
    return "\n".join([
        ALGORITHM, amz_date, f"{cred.date}/{cred.region}/{cred.service}/aws4_request",
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
    ])


def signature(secret: str, cred: Credential, amz_date: str, canonical_request: str) -> str:
    key = signing_key(secret, cred.date, cred.region, cred.service)
    return hmac.new(key, string_to_sign(cred, amz_date, canonical_request).encode("utf-8"),
                    hashlib.sha256).hexdigest()


class SigV4Verifier:
    """Checks a request's signature against the key store; returns who signed it."""

    def __init__(self, keys: KeyStore, mode: AuthMode, default_account: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._mode = mode
        self._default_account = default_account
        self._clock = clock

    def verify(self, req: SignedRequest, query: dict[str, str]) -> tuple[Principal, Credential]:
        """`query` is the decoded query string (first value per name)."""
        verified = self.verify_detailed(req, query)
        return verified.principal, verified.cred

    def verify_detailed(self, req: SignedRequest, query: dict[str, str]) -> Verified:
        auth = req.headers.get("authorization")
        if auth is not None:
            return self._verify_header(req, auth)
        if "X-Amz-Signature" in query or "X-Amz-Algorithm" in query or "X-Amz-Credential" in query:
            return self._verify_presigned(req, query)
        raise AuthFailure(MISSING, "Missing Authentication Token")

    def verify_v2_query(self, req: SignedRequest, query: dict[str, str], resource: str, region: str) -> Verified:
        """S3's signature-version-2 query form (`AWSAccessKeyId`, `Expires`, `Signature`), as botocore's
        HmacV1QueryAuth presigns. `resource` is S3's canonicalized resource (`/bucket/key?sub`)."""
        for name in ("AWSAccessKeyId", "Expires", "Signature"):
            if name not in query:
                raise AuthFailure(MISSING_V2, "Query-string authentication requires the Signature, Expires and "
                                              "AWSAccessKeyId parameters")
        access_key = query["AWSAccessKeyId"]
        cred = Credential(access_key, "", region, "s3")
        key = self._keys.lookup(access_key)
        if self._mode == "any":
            account = key.account_id if key is not None else self._default_account
            return Verified(key.principal if key is not None and key.principal else Principal(access_key, account),
                            cred, "", "", None)
        if key is None or not key.active:
            raise AuthFailure(UNKNOWN_KEY, UNKNOWN_KEY_TEXT)
        if key.session_token is not None:
            token = req.headers.get("x-amz-security-token") or query.get("x-amz-security-token")
            if token is None or not hmac.compare_digest(token, key.session_token):
                raise AuthFailure(UNKNOWN_KEY, UNKNOWN_KEY_TEXT)
            if key.expires is not None and self._clock() >= key.expires:
                raise AuthFailure(TOKEN_EXPIRED, EXPIRED_TEXT)
        try:
            expires = int(query["Expires"])
        except ValueError:
            raise AuthFailure(INCOMPLETE, "Invalid date (should be seconds since epoch): "
                                          f"{query['Expires']}") from None
        if self._clock() > expires:
            raise AuthFailure(EXPIRED, "Request has expired")
        amz_headers = sorted((k, " ".join(v.split())) for k, v in req.headers.items() if k.startswith("x-amz-"))
        string_to_sign = "\n".join([
            req.method.upper(), req.headers.get("content-md5", ""), req.headers.get("content-type", ""),
            query["Expires"], *(f"{k}:{v}" for k, v in amz_headers), resource,
        ])
        expected = base64.b64encode(hmac.new(key.secret_access_key.encode(), string_to_sign.encode("utf-8"),
                                             hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, query["Signature"]):
            failure = AuthFailure(BAD_SIGNATURE, BAD_SIGNATURE_TEXT)
            failure.fields = {"AWSAccessKeyId": access_key, "StringToSign": string_to_sign,
                              "SignatureProvided": query["Signature"]}
            raise failure
        return Verified(key.principal or Principal(key.access_key_id, key.account_id), cred, "", expected, None)

    def _verify_header(self, req: SignedRequest, auth: str) -> Verified:
        params = parse_authorization(auth)
        cred = parse_credential(params["Credential"])
        if cred is None:
            raise AuthFailure(
                INCOMPLETE,
                f"Credential should be scoped to a valid region, not a malformed credential "
                f"'{params['Credential']}'. Authorization={auth}",
            )
        amz_date = req.headers.get("x-amz-date")
        if amz_date is None and "date" in req.headers:
            amz_date = _http_date_to_amz(req.headers["date"])
        if amz_date is None:
            raise AuthFailure(
                INCOMPLETE,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                f"Authorization={auth}",
            )
        signed = params["SignedHeaders"].lower().split(";")
        payload_hash = self._payload_hash(req)
        return self._check(req, cred, amz_date, signed, params["Signature"], payload_hash, expires=None,
                           presigned=False)

    def _verify_presigned(self, req: SignedRequest, query: dict[str, str]) -> Verified:
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders",
                     "X-Amz-Signature"):
            if name not in query:
                raise AuthFailure(INCOMPLETE, f"AWS query-string parameters must include '{name}'. "
                                              "Re-examine the query-string parameters.")
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise AuthFailure(INCOMPLETE, f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'")
        cred = parse_credential(query["X-Amz-Credential"])
        if cred is None:
            raise AuthFailure(INCOMPLETE, f"Invalid credential: '{query['X-Amz-Credential']}'")
        try:
            expires = int(query.get("X-Amz-Expires", "3600"))
        except ValueError:
            raise AuthFailure(INCOMPLETE, "X-Amz-Expires should be a number") from None
        payload_hash = (UNSIGNED_PAYLOAD if cred.service in _NO_DOUBLE_ENCODE
                        else hashlib.sha256(req.body).hexdigest())
        if "x-amz-content-sha256" in req.headers:
            payload_hash = self._payload_hash(req)
        return self._check(req, cred, query["X-Amz-Date"], query["X-Amz-SignedHeaders"].lower().split(";"),
                           query["X-Amz-Signature"], payload_hash, expires=expires, presigned=True)

    def _payload_hash(self, req: SignedRequest) -> str:
        declared = req.headers.get("x-amz-content-sha256")
        if declared is None:
            if req.body_deferred:
                raise AuthFailure(INCOMPLETE, "Missing required header for this request: x-amz-content-sha256")
            return hashlib.sha256(req.body).hexdigest()
        if declared == UNSIGNED_PAYLOAD or declared.startswith("STREAMING-") or req.body_deferred:
            return declared
        actual = hashlib.sha256(req.body).hexdigest()
        if not hmac.compare_digest(declared.lower(), actual):
            raise AuthFailure(BAD_SIGNATURE, "The provided 'x-amz-content-sha256' header does not match "
                                             "what was computed.")
        return declared

    def _check(self, req: SignedRequest, cred: Credential, amz_date: str, signed: list[str],
               provided: str, payload_hash: str, *, expires: int | None, presigned: bool,
               ) -> Verified:
        key = self._keys.lookup(cred.access_key_id)
        if self._mode == "any":
            if key is not None:
                return Verified(key.principal or Principal(cred.access_key_id, key.account_id), cred, amz_date,
                                provided, None)
            account = cred.access_key_id if (len(cred.access_key_id) == 12
                                             and cred.access_key_id.isdigit()) else self._default_account
            return Verified(Principal(cred.access_key_id, account), cred, amz_date, provided, None)
        if key is None or not key.active:
            raise AuthFailure(UNKNOWN_KEY, UNKNOWN_KEY_TEXT)
        if key.session_token is not None:
            # Temporary credentials are only valid with their own token, and only until they expire.
            token = req.headers.get("x-amz-security-token") or _query_token(req.query_string)
            if token is None or not hmac.compare_digest(token, key.session_token):
                raise AuthFailure(UNKNOWN_KEY, UNKNOWN_KEY_TEXT)
            if key.expires is not None and self._clock() >= key.expires:
                raise AuthFailure(TOKEN_EXPIRED, EXPIRED_TEXT)
        self._check_time(amz_date, expires)
        canonical_request = "\n".join([
            req.method.upper(),
            canonical_path(req.raw_path, cred.service),
            canonical_query(req.query_string, drop_signature=presigned),
            canonical_headers(req.headers, signed),
            ";".join(signed),
            payload_hash,
        ])
        expected = signature(key.secret_access_key, cred, amz_date, canonical_request)
        if not hmac.compare_digest(expected, provided.strip().lower()) and "+" in req.query_string:
            # A client that signed "a%20b" and sent "a+b" (Python's requests encodes query parameters so):
            # AWS reads the '+' as a space, as the parameters themselves are read (parse_qs).
            spaced = "\n".join([
                req.method.upper(),
                canonical_path(req.raw_path, cred.service),
                canonical_query(req.query_string, drop_signature=presigned, plus_as_space=True),
                canonical_headers(req.headers, signed),
                ";".join(signed),
                payload_hash,
            ])
            second = signature(key.secret_access_key, cred, amz_date, spaced)
            if hmac.compare_digest(second, provided.strip().lower()):
                canonical_request, expected = spaced, second
        if not hmac.compare_digest(expected, provided.strip().lower()):
            failure = AuthFailure(BAD_SIGNATURE, BAD_SIGNATURE_TEXT)
            # S3 answers with what it signed, so a client can find its mistake.
            failure.fields = {"AWSAccessKeyId": cred.access_key_id,
                              "StringToSign": string_to_sign(cred, amz_date, canonical_request),
                              "SignatureProvided": provided, "CanonicalRequest": canonical_request}
            raise failure
        return Verified(key.principal or Principal(key.access_key_id, key.account_id), cred, amz_date, expected,
                        signing_key(key.secret_access_key, cred.date, cred.region, cred.service))

    def _check_time(self, amz_date: str, expires: int | None) -> None:
        try:
            signed_at = _parse_amz_date(amz_date)
        except ValueError:
            raise AuthFailure(INCOMPLETE, f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                                          "See http://en.wikipedia.org/wiki/ISO_8601") from None
        now = self._clock()
        if expires is not None:
            if now > signed_at + expires:
                raise AuthFailure(EXPIRED, f"Signature expired: {amz_date} is now earlier than "
                                                 f"{_amz(now - expires)} ({_amz(now)} - {expires} sec.)")
            if signed_at - now > MAX_SKEW_S:
                raise AuthFailure(BAD_SIGNATURE, f"Signature not yet current: {amz_date} is still later "
                                                 f"than {_amz(now + MAX_SKEW_S)} ({_amz(now)} + 15 min.)")
            return
        if now - signed_at > MAX_SKEW_S:
            raise AuthFailure(SKEWED, f"Signature expired: {amz_date} is now earlier than "
                                             f"{_amz(now - MAX_SKEW_S)} ({_amz(now)} - 15 min.)")
        if signed_at - now > MAX_SKEW_S:
            raise AuthFailure(SKEWED, f"Signature not yet current: {amz_date} is still later than "
                                             f"{_amz(now + MAX_SKEW_S)} ({_amz(now)} + 15 min.)")


def _query_token(query_string: str) -> str | None:
    """A presigned URL's `X-Amz-Security-Token` (decoded)."""
    for item in query_string.split("&"):
        name, _, value = item.partition("=")
        if name == "X-Amz-Security-Token":
            return unquote(value)
    return None


_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


@lru_cache(maxsize=64)  # requests signed in the same second share the date: parse it once
def _parse_amz_date(value: str) -> float:
    """`20261127T015959Z` as epoch seconds. strptime costs tens of microseconds on every request;
    this is the same strict format for a fraction of it."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second = map(int, match.groups())
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24 and minute < 60
            and second < 61):
        raise ValueError(value)
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _amz(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(AMZ_DATE_FORMAT)


def _http_date_to_amz(value: str) -> str | None:
    try:
        return parsedate_to_datetime(value).astimezone(UTC).strftime(AMZ_DATE_FORMAT)
    except (TypeError, ValueError):
        return None
