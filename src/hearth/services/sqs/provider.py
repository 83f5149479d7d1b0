"""The SQS provider: one method per `AmazonSQS.*` operation Hearth supports.

It owns the API surface: resolving queue URLs to queues of the caller's account, request-level checks
(batch sizes and ids, receive parameters), and the output shapes. Queue and message rules live in
`QueueService`. It lets a caller reach another account's queue only when the queue's policy let it in
(judged by the gateway's authorizer, which sets `ctx.granted_owner`); any other account's queue is
answered as "does not exist".

Queue URLs are `{endpoint}/{account}/{name}`, where the endpoint is the one the client used (its
scheme and Host header), as AWS builds them from the endpoint a request reached: a function in a
sandbox, whose endpoint is its own loopback proxy, gets URLs it can reach (the SDK for JavaScript v3
sends to a queue URL's own origin). Requests without a Host (in-process callers such as
CloudFormation) get the server's configured endpoint. Like AWS, any host is accepted as long as the
path is `/{account}/{name}` (AWS's own `https://sqs.{region}.amazonaws.com/...` URLs work too; their
region wins over the signing region).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import urlsplit

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.events.delivery import DeliveryError, Message
from hearth.services.sqs import errors
from hearth.services.sqs.move_tasks import MoveTasks, task_entry
from hearth.services.sqs.queues import (
    MAX_BATCH_BYTES,
    READABLE,
    SYSTEM_ATTRIBUTES,
    OutgoingMessage,
    Queue,
    QueueService,
    SendResult,
    parse_queue_arn,
    query_code,
)

_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# A Host header fit to be a URL's authority: a name or IPv4 address, or a bracketed IPv6 one, and a port.
_AUTHORITY = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_AWS_HOST = re.compile(r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)$")


class SqsProvider:
    def __init__(self, queues: QueueService, endpoint_url: str, move_tasks: MoveTasks | None = None) -> None:
        self.queues = queues
        self.endpoint_url = endpoint_url.rstrip("/")
        # Move tasks keep their rows in the queues' database; one set per provider unless shared.
        self.move_tasks = move_tasks if move_tasks is not None else MoveTasks(queues)

    # -- helpers ----------------------------------------------------------------------------------

    def url(self, ctx: RequestContext, queue: Queue) -> str:
        host = ctx.headers.get("host", "")
        base = f"{ctx.scheme}://{host}" if _AUTHORITY.match(host) else self.endpoint_url
        return f"{base}/{queue.account}/{queue.name}"

    def _resolve(self, ctx: RequestContext, queue_url: str) -> Queue:
        parts = urlsplit(queue_url)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) == 1 and not parts.scheme and not parts.netloc:
            # A bare queue name names the caller's queue in this region (AWS accepts it as a QueueUrl).
            return self.queues.get(ctx.account_id, ctx.region, segments[0])
        if len(segments) != 2:
            raise errors.invalid_address(queue_url)
        account, name = segments
        region = ctx.region
        host = _AWS_HOST.match(parts.hostname or "")
        if host:
            region = host.group(1) or host.group(2)
        if not ctx.may_use(account):  # another account's queue only when its policy let the caller in
            raise errors.queue_does_not_exist()
        return self.queues.get(account, region, name)

    # -- queues -----------------------------------------------------------------------------------

    def create_queue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self.queues.create_queue(ctx.account_id, ctx.region, params["QueueName"],
                                         params.get("Attributes") or {}, params.get("tags"))
        return {"QueueUrl": self.url(ctx, queue)}

    def get_queue_url(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        owner = params.get("QueueOwnerAWSAccountId") or ctx.account_id
        if not ctx.may_use(owner):
            raise errors.queue_does_not_exist()
        return {"QueueUrl": self.url(ctx, self.queues.get(owner, ctx.region, params["QueueName"]))}

    def list_queues(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queues = self.queues.list_queues(ctx.account_id, ctx.region, params.get("QueueNamePrefix") or "")
        return self._page([self.url(ctx, q) for q in queues], params, "QueueUrls")

    def list_dead_letter_source_queues(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        dlq = self._resolve(ctx, params["QueueUrl"])
        out = self._page([self.url(ctx, q) for q in self.queues.dead_letter_sources(dlq)], params, "queueUrls")
        out.setdefault("queueUrls", [])
        return out

    @staticmethod
    def _page(urls: list[str], params: dict[str, Any], key: str) -> dict[str, Any]:
        limit = params.get("MaxResults")
        if limit is not None and not 1 <= limit <= 1000:
            raise errors.invalid_parameter_value("MaxResults", limit,
                                                 "MaxResults must be an integer between 1 and 1000.")
        start = 0
        token = params.get("NextToken")
        if token:
            try:
                start = int(base64.b64decode(token, validate=True).decode())
            except (binascii.Error, ValueError):
                raise errors.invalid_parameter("Invalid NextToken value.") from None
        size = limit if limit is not None else 1000
        page = urls[start:start + size]
        out: dict[str, Any] = {}
        if page:
            out[key] = page
        if limit is not None and start + size < len(urls):
            out["NextToken"] = base64.b64encode(str(start + size).encode()).decode()
        return out

    def delete_queue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.delete_queue(self._resolve(ctx, params["QueueUrl"]))
        return {}

    def get_queue_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        attributes = self.queues.get_attributes(queue, params.get("AttributeNames") or [])
        return {"Attributes": attributes} if attributes else {}

    def set_queue_attributes(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.set_attributes(self._resolve(ctx, params["QueueUrl"]), params.get("Attributes") or {})
        return {}

    def purge_queue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.purge(self._resolve(ctx, params["QueueUrl"]))
        return {}

    def add_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        """A statement labelled `Label` in the queue's `Policy`, written as AWS writes it (recorded)."""
        queue = self._resolve(ctx, params["QueueUrl"])
        policy, statements = _policy_statements(queue)
        label = params["Label"]
        if any(s.get("Sid") == label for s in statements):
            raise errors.invalid_parameter_value("Label", label, "Already exists.")
        principals = [f"arn:aws:iam::{account}:root" for account in params.get("AWSAccountIds") or []]
        actions = [f"SQS:{action}" for action in params.get("Actions") or []]
        statements.append({"Sid": label, "Effect": "Allow", "Principal": {"AWS": _one_or_list(principals)},
                           "Action": _one_or_list(actions), "Resource": queue.arn})
        policy["Statement"] = statements
        self.queues.set_attributes(queue, {"Policy": json.dumps(policy)})
        return {}

    def remove_permission(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        policy, statements = _policy_statements(queue)
        label = params["Label"]
        remaining = [s for s in statements if s.get("Sid") != label]
        if len(remaining) == len(statements):
            raise errors.invalid_parameter_value("Label", label, "can't find label.")
        policy["Statement"] = remaining
        # The last statement gone, the queue has no policy at all (recorded by AWS).
        self.queues.set_attributes(queue, {"Policy": json.dumps(policy) if remaining else ""})
        return {}

    # -- message move tasks (dead-letter queue redrive) -------------------------------------------------

    async def start_message_move_task(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        task = self.move_tasks.start(ctx.account_id, params["SourceArn"], params.get("DestinationArn"),
                                     params.get("MaxNumberOfMessagesPerSecond"))
        return {"TaskHandle": task.handle}

    async def list_message_move_tasks(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        tasks = self.move_tasks.list_tasks(ctx.account_id, params["SourceArn"], params.get("MaxResults"))
        return {"Results": [task_entry(t) for t in tasks]}

    async def cancel_message_move_task(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        task = self.move_tasks.cancel(ctx.account_id, params["TaskHandle"])
        return {"ApproximateNumberOfMessagesMoved": task.moved}

    def tag_queue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.tag(self._resolve(ctx, params["QueueUrl"]), params.get("Tags") or {})
        return {}

    def untag_queue(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.untag(self._resolve(ctx, params["QueueUrl"]), params.get("TagKeys") or [])
        return {}

    def list_queue_tags(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        return {"Tags": dict(queue.tags)} if queue.tags else {}

    # -- messages ---------------------------------------------------------------------------------

    def _outgoing(self, ctx: RequestContext, entry: dict[str, Any]) -> OutgoingMessage:
        return OutgoingMessage(
            body=entry.get("MessageBody", ""),
            attributes=entry.get("MessageAttributes"),
            delay=entry.get("DelaySeconds"),
            group_id=entry.get("MessageGroupId"),
            dedup_id=entry.get("MessageDeduplicationId"),
            trace_header=ctx.headers.get("x-amzn-trace-id"),
            system_attributes=entry.get("MessageSystemAttributes"),
            sender_id=ctx.account_id,
        )

    @staticmethod
    def _sent(result: SendResult) -> dict[str, Any]:
        out: dict[str, Any] = {"MessageId": result.message_id, "MD5OfMessageBody": result.md5_of_body}
        if result.md5_of_attributes:
            out["MD5OfMessageAttributes"] = result.md5_of_attributes
        if result.md5_of_system_attributes:
            out["MD5OfMessageSystemAttributes"] = result.md5_of_system_attributes
        if result.sequence_number:
            out["SequenceNumber"] = result.sequence_number
        return out

    def send_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        return self._sent(self.queues.send(queue, self._outgoing(ctx, params)))

    def send_message_batch(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        entries: list[dict[str, Any]] = params.get("Entries") or []
        _check_batch(entries, "SendMessageBatchRequestEntry")
        size = sum(_entry_size(e) for e in entries)
        if size > MAX_BATCH_BYTES:
            raise errors.batch_too_long(size, MAX_BATCH_BYTES)
        results = self.queues.send_batch(queue, [self._outgoing(ctx, e) for e in entries])
        for result in results:
            # A FIFO entry without its group or deduplication id fails the whole request (recorded by AWS).
            if isinstance(result, AwsError) and queue.fifo and (
                    query_code(result) == "MissingParameter" or "ContentBasedDeduplication" in result.message):
                raise errors.invalid_parameter(result.message)
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, AwsError):
                failed.append(_failure(entry["Id"], result))
            else:
                successful.append({"Id": entry["Id"], **self._sent(result)})
        return _batch_result(successful, failed)

    async def receive_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        max_messages = params.get("MaxNumberOfMessages")
        if max_messages is None:
            max_messages = 1
        if not 1 <= max_messages <= 10:
            raise errors.invalid_parameter_value("MaxNumberOfMessages", max_messages,
                                                 "Must be between 1 and 10, if provided.")
        wait = params.get("WaitTimeSeconds")
        if wait is None:
            wait = queue.int_attr("ReceiveMessageWaitTimeSeconds")
        if not 0 <= wait <= 20:
            raise errors.invalid_parameter_value("WaitTimeSeconds", wait, "Must be >= 0 and <= 20, if provided.")
        visibility = params.get("VisibilityTimeout")
        if visibility is not None and not 0 <= visibility <= 43_200:
            raise errors.invalid_parameter_value("VisibilityTimeout", visibility,
                                                 "Must be between 0 and 43200, if provided.")
        legacy: list[str] = params.get("AttributeNames") or []
        names = [*legacy, *(params.get("MessageSystemAttributeNames") or [])]
        for name in names:
            # The legacy AttributeNames list is modelled with queue attribute names while AWS returns
            # message system attributes for it; both kinds are accepted there (queue names select
            # nothing), any other name is refused as AWS does.
            if name != "All" and name not in SYSTEM_ATTRIBUTES and not (name in legacy and name in READABLE):
                raise errors.invalid_attribute_name(name)
        messages = await self.queues.receive_wait(queue, max_messages, visibility, float(wait),
                                                  attribute_names=names,
                                                  message_attribute_names=params.get("MessageAttributeNames") or [])
        return {"Messages": messages} if messages else {}

    def delete_message(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self.queues.delete_message(self._resolve(ctx, params["QueueUrl"]), params["ReceiptHandle"])
        return {}

    def delete_message_batch(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        entries: list[dict[str, Any]] = params.get("Entries") or []
        _check_batch(entries, "DeleteMessageBatchRequestEntry")
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            try:
                self.queues.delete_message(queue, entry["ReceiptHandle"])
            except AwsError as err:
                failed.append(_failure(entry["Id"], err))
            else:
                successful.append({"Id": entry["Id"]})
        return _batch_result(successful, failed)

    def change_message_visibility(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        self.queues.change_visibility(queue, params["ReceiptHandle"], int(params["VisibilityTimeout"]))
        return {}

    def change_message_visibility_batch(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        queue = self._resolve(ctx, params["QueueUrl"])
        entries: list[dict[str, Any]] = params.get("Entries") or []
        _check_batch(entries, "ChangeMessageVisibilityBatchRequestEntry")
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            try:
                if entry.get("VisibilityTimeout") is None:
                    raise errors.missing_parameter("VisibilityTimeout")
                self.queues.change_visibility(queue, entry["ReceiptHandle"], int(entry["VisibilityTimeout"]))
            except AwsError as err:
                failed.append(_failure(entry["Id"], err))
            else:
                successful.append({"Id": entry["Id"]})
        return _batch_result(successful, failed)


def _check_batch(entries: list[dict[str, Any]], entry_shape: str) -> None:
    if not entries:
        raise errors.empty_batch(entry_shape)
    if len(entries) > 10:
        raise errors.too_many_entries(len(entries))
    seen: set[str] = set()
    for entry in entries:
        entry_id = str(entry.get("Id", ""))
        if not _ENTRY_ID.match(entry_id):
            raise errors.invalid_batch_entry_id()
        if entry_id in seen:
            raise errors.ids_not_distinct(entry_id)
        seen.add(entry_id)


def _policy_statements(queue: Queue) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The queue's policy document (AWS's default one when it has none) and its statements as a list."""
    raw = queue.attributes.get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {}
    if not isinstance(policy, dict) or not policy:
        policy = {"Version": "2008-10-17", "Id": f"{queue.arn}/SQSDefaultPolicy"}
    statements = policy.get("Statement") or []
    return policy, [statements] if isinstance(statements, dict) else list(statements)


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _entry_size(entry: dict[str, Any]) -> int:
    """What a batch entry counts against the batch limit: its body and its attributes' names, types and
    values (AWS: one entry of the maximum size plus a one-byte body exceeds it)."""
    size = len(str(entry.get("MessageBody", "")).encode())
    for name, attr in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(attr.get("DataType") or "").encode())
        value = attr.get("StringValue") if attr.get("StringValue") is not None else attr.get("BinaryValue")
        size += len(value) if isinstance(value, (bytes, bytearray)) else len(str(value or "").encode())
    return size


def _batch_result(successful: list[dict[str, Any]], failed: list[dict[str, Any]]) -> dict[str, Any]:
    # AWS leaves an empty list out (recorded: a batch where every entry succeeded has no `Failed`).
    out: dict[str, Any] = {}
    if successful:
        out["Successful"] = successful
    if failed:
        out["Failed"] = failed
    return out


def _failure(entry_id: str, err: AwsError) -> dict[str, Any]:
    return {"Id": entry_id, "SenderFault": err.sender_fault, "Code": query_code(err), "Message": err.message}


class SqsDelivery:
    """The `sqs` handler of the DeliveryRouter: topics, destinations and dead-letter configs send here."""

    def __init__(self, queues: QueueService) -> None:
        self.queues = queues

    async def __call__(self, target_arn: str, message: Message) -> None:
        parsed = parse_queue_arn(target_arn)
        queue = self.queues.by_arn(target_arn) if parsed else None
        if queue is None:
            raise DeliveryError(f"The queue {target_arn} does not exist.", "QueueDoesNotExist")
        sender = message.source_arn.split(":")[4] if message.source_arn and message.source_arn.count(":") >= 5 \
            else queue.account
        outgoing = OutgoingMessage(body=message.body, attributes=message.attributes or None,
                                   group_id=message.group_id, dedup_id=message.deduplication_id,
                                   trace_header=message.trace_header, sender_id=sender)
        try:
            self.queues.send(queue, outgoing)
        except AwsError as err:
            raise DeliveryError(err.message, query_code(err)) from None
