"""The AWS API gateway: one ASGI app in front of every AWS-compatible service Hearth serves.

Per request it: identifies the service (SigV4 credential scope, then X-Amz-Target, the path, the
form's Action), finds the operation, reads the body (bounded), verifies the signature, parses and
validates the input from botocore's model, calls the provider's method and renders the result or
error in the service's protocol. It never holds business rules, and never answers with a stack
trace: an unexpected exception is logged and answered as a 500 ServiceException.

Adding a service = adding `"<signing name>": [provider, ...]` to the providers dict.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from botocore.model import OperationModel

from hearth.asgi import BodyTooLarge, read_body, send_stream
from hearth.aws import query_compat
from hearth.aws.authz.authorizer import Authorizer
from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError, ValidationError
from hearth.aws.keys import KeyStore
from hearth.aws.models import ServiceApi, service_api
from hearth.aws.protocols import ec2, json_, query, rest_json
from hearth.aws.protocols.common import BadRequest, HttpRequest, HttpResponse
from hearth.aws.query_compat import query_view
from hearth.aws.s3_front import S3Front, host_bucket
from hearth.aws.sigv4 import AuthFailure, SignedRequest, SigV4Verifier, peek_credential
from hearth.aws.validate import validate
from hearth.config import Settings
from hearth.services.base import RawResponse, method_name

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# AWS Lambda refuses request bodies above this before parsing them (recorded for CreateFunction: 70167211
# bytes, which lets a zip just over 50 MB through, base64-encoded, to be refused for its zipped size).
REQUEST_BODY_LIMIT = 70_167_211




class AwsGateway:
    def __init__(self, settings: Settings, keys: KeyStore, providers: dict[str, list[object]],
                 *, clock: Callable[[], float] = time.time, authorizer: Authorizer | None = None) -> None:
        self._settings = settings
        # Requests signed with non-root credentials (IAM users, role sessions) are judged by IAM policies.
        self._authorizer = authorizer
        self._providers = providers
        self._verifier = SigV4Verifier(keys, settings.auth, settings.account_id, clock)
        self._methods: dict[tuple[str, str], Callable[..., Any] | None] = {}
        self._targets: dict[str, str] | None = None
        self._signing: dict[str, list[str]] | None = None
        s3_api = service_api("s3") if "s3" in providers else None
        # S3 has its own path: addressing by Host, streamed bodies, its signature rules (s3_front).
        self._s3 = (S3Front(s3_api, self._verifier, providers["s3"], settings.region, authorizer)
                    if s3_api is not None else None)

    # -- ASGI -------------------------------------------------------------------------------------


    @property
    def services(self) -> list[str]:
        """The services this gateway answers (botocore's signing names)."""
        return sorted(self._providers)

    def add_service(self, service: str, providers: list[object]) -> None:
        """Serve one more service: for components that call the others through this gateway (CloudFormation)."""
        self._providers[service] = providers
        self._methods.clear()
        self._targets = None
        self._signing = None

    async def call(self, service: str, operation: str, params: dict[str, Any], *, account_id: str,
                   region: str, caller: str, principal: Principal | None = None) -> dict[str, Any]:
        """One operation called in-process, as an API caller of `account_id` would make it (no HTTP, no
        signature): the same model validation and provider method, the provider's `AwsError` raised as is.
        `caller` names who calls (it becomes the root principal's key id, e.g. `cloudformation`); with
        `principal`, the call is made as that principal and judged by the authorizer like a request it
        signed (CloudFormation acting as the stack's role or its operator)."""
        api = service_api(service)
        op = api.operation(operation) if api is not None else None
        if api is None or op is None:
            raise AwsError("UnknownServiceException", f"The service '{service}' is not served by this Hearth "
                                                      "endpoint.", 400)
        validate(op.input_shape, params, enums=_framework_checks_enums(api))
        handler = self._method(service, operation)
        if handler is None:
            raise AwsError("UnknownOperationException", f"The operation {operation} is not supported by Hearth.", 501)
        ctx = RequestContext(service=service, operation=operation, region=region,
                             principal=principal or Principal(caller, account_id), request_id=str(uuid.uuid4()))
        if principal is not None and self._authorizer is not None:
            ctx.granted_owner = self._authorizer.authorize(ctx, params, secure=True)  # in-process: never on the wire
        result = handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, dict) else {}
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        try:
            response = await self._handle(scope, receive, send, request_id)
        except Exception:
            log.exception("internal error answering %s %s", scope.get("method"), scope.get("path"))
            response = rest_json.render_error(_internal_error(), request_id)
        if response is not None:  # None: answered already (S3 streams its answers itself)
            await _send_response(send, response, receive)

    # -- one request ------------------------------------------------------------------------------

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> HttpResponse | None:
        method: str = scope["method"]
        raw_path_bytes: bytes | None = scope.get("raw_path")
        raw_path = (raw_path_bytes.decode("latin-1").partition("?")[0] if raw_path_bytes
                    else quote(scope.get("path", "/")))
        query_string = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", ()):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        # Most data-plane calls (Invoke, SendMessage) carry no query string: skip the parser for them.
        query_params = parse_qs(query_string, keep_blank_values=True) if query_string else {}
        first_query = {k: v[0] for k, v in query_params.items()} if query_params else {}

        service = self._identify(headers, first_query, raw_path, method)
        if self._s3 is not None:
            vhost = host_bucket(headers.get("host", ""))
            if service == "s3" or vhost is not None or "AWSAccessKeyId" in first_query or (
                    service is None and ((method == "OPTIONS" and "origin" in headers)
                                         or ("authorization" not in headers and self._s3.claims(raw_path)))):
                req = HttpRequest(method, raw_path, query_string, query_params, headers, b"")
                await self._s3(scope, receive, send, req, first_query, vhost, request_id)
                return None
        api = service_api(service) if service is not None else None
        if api is not None and api.query_compatible and (
                _is_query_request(headers, first_query) or (method == "GET" and "x-amz-target" not in headers)):
            api = query_view(api.name) or api  # SQS over the query protocol: same operations, XML answers
        if api is None or api.protocol not in ("rest-json", "json", "query", "ec2"):
            return await self._unknown_service(scope, receive, headers, first_query, service, request_id)
        req = HttpRequest(method, raw_path, query_string, query_params, headers, b"")
        as_cbor = api.protocol == "json" and json_.is_cbor(headers)
        try:
            return await self._serve(api, req, scope, receive, first_query, request_id)
        except AwsError as err:
            return self._render_error(api, err, request_id, as_cbor=as_cbor)
        except Exception:
            log.exception("internal error in %s %s %s", service, method, raw_path)
            return self._render_error(api, _internal_error(), request_id, as_cbor=as_cbor)

    async def _serve(self, api: ServiceApi, req: HttpRequest, scope: Scope, receive: Receive,
                     first_query: dict[str, str], request_id: str) -> HttpResponse:
        op, labels = self._find_operation(api, req)
        op_label = op.name if op is not None else "this"
        try:
            req.body = await read_body(receive, req.headers, REQUEST_BODY_LIMIT)
        except BodyTooLarge:
            raise AwsError("RequestEntityTooLargeException",
                           f"Request must be smaller than {REQUEST_BODY_LIMIT} bytes for the {op_label} "
                           "operation", 413) from None
        try:
            principal, cred = self._verifier.verify(
                SignedRequest(req.method, req.path, req.query_string, req.headers, req.body), first_query)
        except AuthFailure as failure:
            raise failure.for_protocol(api.protocol) from None
        form: dict[str, str] = {}
        if api.protocol in ("query", "ec2"):  # ec2: query's form, its own names and answers (protocols/ec2.py)
            try:
                form = query.form_params(req)
            except BadRequest as exc:
                raise _bad_request(api, exc) from None
            action = form.get("Action")
            if api.query_compatible:  # SQS's query API: a GET without an Action, queue URLs as paths
                if not action and req.method == "GET":
                    return HttpResponse(404, {"x-amzn-RequestId": request_id, "Content-Type": "text/xml"},
                                        b"<UnknownOperationException/>")
                refused = query_compat.refused_action(api, action, req.path)
                if refused is not None:
                    raise refused
            op = api.operation(action) if action else None
            if op is None:
                raise AwsError("InvalidAction", f"The action {action} is not valid for this web service.", 400)
        if op is None:
            raise _unknown_operation(api, req)
        try:
            if api.protocol == "rest-json":
                params = rest_json.parse_request(op, req, labels)
            elif api.protocol == "json":
                params = json_.parse_request(op, req.body, as_cbor=json_.is_cbor(req.headers))
            elif api.protocol == "ec2":
                params = ec2.parse_request(op, form)
            else:
                params = query.parse_request(op, form)
                if api.query_compatible:
                    params = query_compat.with_queue_url(op, params, req.headers.get("host", "localhost"),
                                                         scope.get("scheme", "http"), req.path)
                    params = query_compat.with_empty_batch(op, params)
        except BadRequest as exc:
            raise _bad_request(api, exc) from None
        try:
            validate(op.input_shape, params, enums=_framework_checks_enums(api),
                     judged_by_service=_JUDGED_BY_SERVICE.get(api.name, frozenset()))
        except ValidationError as invalid:
            raise _as_service_validation_error(api, op.name, invalid) from None
        handler = self._method(api.name, op.name)
        if handler is None:
            if api.protocol in ("query", "ec2"):
                raise AwsError("InvalidAction", f"The action {op.name} is not valid for this web service.",
                               400)
            raise AwsError("UnknownOperationException",
                           f"The operation {op.name} is not supported by Hearth.", 501)
        client = scope.get("client")
        ctx = RequestContext(
            service=api.name, operation=op.name, region=cred.region, principal=principal,
            request_id=request_id, headers=req.headers, raw_body=req.body,
            source_ip=client[0] if client else "127.0.0.1", scheme=str(scope.get("scheme", "http")),
        )
        if self._authorizer is not None:
            ctx.granted_owner = self._authorizer.authorize(ctx, params, secure=scope.get("scheme") == "https")
        result = handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, RawResponse):
            headers = dict(result.headers)
            headers.setdefault("x-amzn-RequestId", request_id)
            return HttpResponse(result.status, headers, result.body)
        result = result or {}
        if api.protocol == "rest-json":
            return rest_json.render(op, result, request_id)
        if api.protocol == "json":
            return json_.render(api, op, result, request_id, as_cbor=json_.is_cbor(req.headers))
        if api.protocol == "ec2":
            return ec2.render(api, op, result, request_id)
        if api.query_compatible and query.wants_json(req.headers):  # SQS's query API answers JSON on request
            return query.render_json(op, result, request_id)
        return query.render(api, op, result, request_id)

    # -- routing ----------------------------------------------------------------------------------

    def _identify(self, headers: dict[str, str], first_query: dict[str, str], path: str,
                  method: str) -> str | None:
        # The json target first: two services may share a signing name (DynamoDB Streams signs as
        # `dynamodb`), never a target prefix.
        target = headers.get("x-amz-target")
        if target:
            prefix = target.rpartition(".")[0]
            found = self._target_prefixes().get(prefix)
            if found is not None:
                return found
        cred = peek_credential(headers, first_query)
        if cred is not None:
            # Several models may share a signing name (apigateway and apigatewayv2 both sign as
            # "apigateway"): the one whose routes know the path answers.
            names = self._signing_names().get(cred.service, [])
            if len(names) == 1:
                return names[0]
            for name in names:
                api = service_api(name)
                if api is not None and api.has_path(path):
                    return name
            if names:
                return names[0]
        for name in self._providers:
            api = service_api(name)
            # S3's greedy `/{Bucket}/{Key+}` matches any path: S3 is found by its Host or signature.
            if api is not None and api.routes and api.protocol != "rest-xml" and api.has_path(path):
                return name
        if cred is not None:
            return cred.service  # a service Hearth does not serve: answered as unknown
        content_type = headers.get("content-type", "")
        if "x-www-form-urlencoded" in content_type or "Action" in first_query:
            query_services = [n for n in self._providers if (a := service_api(n)) and a.protocol == "query"]
            if len(query_services) == 1:
                return query_services[0]
        return None

    def _signing_names(self) -> dict[str, list[str]]:
        if self._signing is None:
            signing: dict[str, list[str]] = {}
            for name in self._providers:
                api = service_api(name)
                signed_as = str(api.model.metadata.get("signingName") or name) if api is not None else name
                signing.setdefault(signed_as, []).append(name)
            self._signing = signing
        return self._signing

    def _target_prefixes(self) -> dict[str, str]:
        if self._targets is None:
            targets: dict[str, str] = {}
            for name in self._providers:
                api = service_api(name)
                if api is not None and api.protocol == "json" and api.target_prefix:
                    targets[api.target_prefix] = name
            self._targets = targets
        return self._targets

    def _find_operation(self, api: ServiceApi, req: HttpRequest,
                        ) -> tuple[OperationModel | None, dict[str, str]]:
        if api.protocol == "rest-json":
            found = api.match(req.method, req.path, req.query)
            return (found[0], found[1]) if found else (None, {})
        if api.protocol == "json":
            name = json_.operation_name(api, req.headers.get("x-amz-target"))
            return (api.operation(name) if name else None), {}
        return None, {}  # query: the Action is in the (not yet read) body

    def _method(self, service: str, operation: str) -> Callable[..., Any] | None:
        key = (service, operation)
        if key not in self._methods:
            name = method_name(operation)
            self._methods[key] = next(
                (getattr(p, name) for p in self._providers.get(service, []) if callable(getattr(p, name, None))),
                None)
        return self._methods[key]

    async def _unknown_service(self, scope: Scope, receive: Receive, headers: dict[str, str],
                               first_query: dict[str, str], service: str | None,
                               request_id: str) -> HttpResponse:
        # Drain (a bounded part of) the body so the connection stays usable.
        try:
            body = await read_body(receive, headers, REQUEST_BODY_LIMIT)
        except BodyTooLarge:
            body = b""
        if service is None and "x-www-form-urlencoded" in headers.get("content-type", ""):
            # An unsigned query-protocol call (STS's AssumeRoleWithWebIdentity and …WithSAML are unsigned
            # by design): the form's Action and Version name the service when several speak query.
            api = self._query_service_of(body)
            if api is not None:
                req = HttpRequest(scope["method"], scope.get("path", "/"), "", {}, headers, b"")
                try:
                    return await self._serve(api, req, scope, _replay(body), first_query, request_id)
                except AwsError as refused:
                    return self._render_error(api, refused, request_id)
        if service is None and "authorization" not in headers and "X-Amz-Credential" not in first_query:
            err: AwsError = AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        else:
            err = AwsError("UnknownServiceException",
                           f"The service '{service or 'unknown'}' is not served by this Hearth endpoint.", 400)
        return rest_json.render_error(err, request_id)

    def _query_service_of(self, body: bytes) -> ServiceApi | None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        action, version = form.get("Action"), form.get("Version")
        for name in self._providers:
            api = service_api(name)
            if (api is not None and api.protocol == "query" and action and api.operation(action) is not None
                    and api.model.metadata.get("apiVersion") == version):
                return api
        return None

    def _render_error(self, api: ServiceApi, err: AwsError, request_id: str, *, as_cbor: bool = False,
                      ) -> HttpResponse:
        if api.protocol == "json":
            return json_.render_error(api, err, request_id, as_cbor=as_cbor)
        if api.protocol == "ec2":
            return ec2.render_error(err, request_id)
        if api.protocol == "query":
            if api.query_compatible:
                err = query_compat.as_query_error(err)
            if api.name in ("iam", "sts") and err.code == "ValidationException":
                # IAM and STS spell the framework's model validation failure `ValidationError`.
                err = AwsError("ValidationError", err.message, err.status)
            return query.render_error(api, err, request_id)
        return rest_json.render_error(err, request_id)


def _is_query_request(headers: dict[str, str], first_query: dict[str, str]) -> bool:
    """A form-encoded `Action=` request (query protocol) rather than a json `X-Amz-Target` one."""
    if headers.get("x-amz-target"):
        return False
    return "x-www-form-urlencoded" in headers.get("content-type", "") or "Action" in first_query


# Members (by path) a service checks itself, with its own error, before AWS's request framework would:
# Lambda answers an unknown `Runtime` with InvalidParameterValueException ("Value … at 'runtime' failed
# to satisfy constraint: … or be a valid ARN", listing the runtimes it accepts today), not with the
# framework's ValidationException over botocore's longer enum (services/lambda_/validation.py).
# IAM words a credential id's pattern failure without the value (services/iam/credentials.py).
# EventBridge accepts an OAuth connection's method in any case (services/events/connections.py).
_JUDGED_BY_SERVICE: dict[str, frozenset[str]] = {"lambda": frozenset({"runtime"}),
                                                 "iam": frozenset({"serviceSpecificCredentialId"}),
                                                 "events": frozenset({"authParameters.oAuthParameters.httpMethod"})}


def _as_service_validation_error(api: ServiceApi, operation: str, err: ValidationError) -> AwsError:
    """The framework's model validation failure as the service spells it.

    CloudWatch Logs' classic operations answer a constraint violation (a `limit` above its maximum, a
    name too long) as InvalidParameterException with the framework's text; its newer delivery
    operations answer ValidationException like every other json service (recorded by AWS)."""
    if api.name == "logs" and "Delivery" not in operation:
        return AwsError("InvalidParameterException", err.message, err.status)
    if api.name == "apigateway":
        return _apigateway_validation_error(api, operation, err)
    if api.protocol == "query" and api.query_compatible:
        return query_compat.missing_parameter(err.message) or err
    if api.name == "sns":
        # SNS names a missing top-level parameter its own way; deeper violations keep the framework's text
        # under the query services' `ValidationError` code.
        missing = _MISSING_TOP_LEVEL.match(err.message)
        op = api.operation(operation)
        members = op.input_shape.members if op is not None and op.input_shape is not None else {}
        name = missing.group(1) if missing is not None else ""
        member = members.get(name[:1].upper() + name[1:])
        # Only a missing text parameter is SNS's own "no value for required parameter" (a missing map, such
        # as CreatePlatformApplication's Attributes, keeps the framework's text: both recorded by AWS).
        if missing is not None and member is not None and member.type_name == "string":
            return AwsError("InvalidParameter", f"Invalid parameter: {name[:1].upper()}{name[1:]} Reason: no value "
                                                "for required parameter", err.status)
        return AwsError("ValidationError", err.message, err.status)
    return err


def _apigateway_validation_error(api: ServiceApi, operation: str, err: ValidationError) -> AwsError:
    """API Gateway names a body member by the operation's input (`putIntegrationInput.type`), a URI
    member by itself (`statusCode`), and leaves "Member must not be null" out of a list member's
    constraints (all recorded by AWS)."""
    op = api.operation(operation)
    members = op.input_shape.members if op is not None and op.input_shape is not None else {}
    in_body = {name[:1].lower() + name[1:] for name, shape in members.items()
               if not shape.serialization.get("location")}
    prefix = operation[:1].lower() + operation[1:] + "Input."

    def path(m: re.Match[str]) -> str:
        first = m.group(1).split(".", 1)[0]
        return f" at '{prefix if first in in_body else ''}{m.group(1)}' "

    message = re.sub(r" at '([^']+)' (?=failed to satisfy)", path, err.message)
    message = message.replace("], Member must not be null]", "]]")
    return AwsError(err.code, message, err.status)


_MISSING_TOP_LEVEL = re.compile(r"^1 validation error detected: Value null at '(\w+)' failed to satisfy constraint: "
                                r"Member must not be null$")


def _framework_checks_enums(api: ServiceApi) -> bool:
    """Whether AWS's request framework refuses values outside a modelled enum for this service.

    Services born on the json protocols (Lambda, Logs, Kinesis, EventBridge) answer a
    ValidationException ("Member must satisfy enum value set: [...]") before the operation runs.
    Services born on the query protocol (SNS, and SQS even on json, being awsQueryCompatible) never
    did: their operations judge names themselves (SQS answers `InvalidAttributeName`, and accepts
    message system attribute names in ReceiveMessage's `AttributeNames`, whose model enum lists only
    queue attributes). So for those the model's enums are documentation, not constraints.
    """
    return api.protocol not in ("query", "ec2") and not api.query_compatible


def _internal_error() -> AwsError:
    return AwsError("ServiceException", "An internal error occurred.", 500, message_key="Message",
                    sender_fault=False)


def _unknown_operation(api: ServiceApi, req: HttpRequest) -> AwsError:
    if api.protocol == "json":
        return AwsError("UnknownOperationException", "", 400)
    return AwsError("UnknownOperationException", "Unknown operation", 404)


def _bad_request(api: ServiceApi, exc: BadRequest) -> AwsError:
    if api.protocol == "rest-json":
        return AwsError("InvalidRequestContentException",
                        f"Could not parse request body into json: {exc.detail}", 400)
    if api.protocol == "json":
        return AwsError("SerializationException", exc.detail, 400)
    return AwsError("MalformedQueryString", exc.detail, 400)



def _replay(body: bytes) -> Receive:
    """An ASGI receive that hands over a body read already."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_response(send: Send, response: HttpResponse, receive: Receive) -> None:
    raw_headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1", "replace"))
                   for k, v in response.headers.items() if k.lower() != "content-length"]
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        raw_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": bytes(body)})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    # The request's body was read before any streamed answer: `receive` now only reports the client leaving.
    await send_stream(send, body, receive)
