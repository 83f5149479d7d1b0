"""The query-protocol view of an `awsQueryCompatible` json service (SQS): its model as the query API.

SQS moved its botocore model from the query protocol to json but AWS still answers form-encoded
`Action=SendMessage&...` requests with XML, and older SDKs (and some AWS CLI v1 builds) send them.
botocore's json model keeps the shapes and the `flattened` marks of the query era but drops the wire
names (`locationName`) the query API uses, so this module derives them and builds a second
`ServiceApi` whose protocol is `query`; the ordinary query reader and writer then serve it.

Naming rules (checked against AWS's SQS query API reference: `Attribute.1.Name`, `AttributeName.1`,
`MessageAttribute.1.Value.StringValue`, `SendMessageBatchRequestEntry.1.Id`, `Tag.1.Key`, `TagKey.1`,
responses with repeated `<Message>`, `<QueueUrl>`, `<Attribute><Name/><Value/></Attribute>`):
- a flattened list of structures is named after the element shape (`SendMessageBatchRequestEntry`);
- a flattened list of scalars after the member, singular (`AttributeNames` -> `AttributeName`);
- a flattened map after the member, singular (`Attributes` -> `Attribute`), its entries `Name`/`Value`
  (`Key`/`Value` for tag maps);
- the few names that follow no rule are listed in `_EXCEPTIONS`.

It also owns the query API's addressing: a request sent to a queue's URL (`/<account>/<name>`, GET or
POST) is about that queue. It never changes the shared json model (it works on a deep copy) and never
decides routing: the gateway picks this view when a query-compatible service receives an Action.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from botocore.model import OperationModel, ServiceModel

from hearth.aws.errors import AwsError
from hearth.aws.models import ServiceApi, load_model_data, service_api

# (structure shape, member) -> query name, where AWS's name follows none of the rules above.
_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("AddPermissionRequest", "Actions"): "ActionName",
}
# The XML namespace of query responses, per service (AWS's, from the query-era models).
_NAMESPACES: dict[str, str] = {
    "sqs": "http://queue.amazonaws.com/doc/{version}/",
}


def _singular(name: str) -> str:
    base = name[:-1] if name.endswith("s") and not name.endswith("ss") else name
    return base[:1].upper() + base[1:]


def query_names(shapes: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(structure, member) -> wire name, for every member whose list or map is flattened."""
    names: dict[tuple[str, str], str] = {}
    for shape_name, shape in shapes.items():
        if shape.get("type") != "structure":
            continue
        for member, ref in shape.get("members", {}).items():
            target = shapes.get(ref["shape"], {})
            kind = target.get("type")
            if kind not in ("list", "map") or not (target.get("flattened") or ref.get("flattened")):
                continue
            if (shape_name, member) in _EXCEPTIONS:
                names[(shape_name, member)] = _EXCEPTIONS[(shape_name, member)]
            elif kind == "list" and shapes.get(target["member"]["shape"], {}).get("type") == "structure":
                names[(shape_name, member)] = target["member"]["shape"]
            else:
                names[(shape_name, member)] = _singular(member)
    return names


def query_model_data(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a json model's data, rewritten to describe the same API in the query protocol."""
    out = copy.deepcopy(data)
    meta = out["metadata"]
    meta["protocol"] = "query"
    meta["protocols"] = ["query"]
    version = meta.get("apiVersion", "")
    meta.setdefault("xmlNamespace", _NAMESPACES.get(name, "https://{name}.amazonaws.com/doc/{version}/")
                    .format(name=meta.get("endpointPrefix", name), version=version))
    shapes: dict[str, Any] = out["shapes"]
    for (shape_name, member), wire in query_names(shapes).items():
        ref = shapes[shape_name]["members"][member]
        ref["locationName"] = wire
        ref["flattened"] = True
    for shape in shapes.values():
        if shape.get("type") == "map" and shape.get("flattened"):
            shape["key"] = {**shape["key"], "locationName": "Key" if shape["key"]["shape"] == "TagKey" else "Name"}
            shape["value"] = {**shape["value"], "locationName": "Value"}
    for op in out["operations"].values():
        output = op.get("output")
        if output is not None:
            op["output"] = {**output, "resultWrapper": f"{op['name']}Result"}
    return out


@cache
def query_view(name: str) -> ServiceApi | None:
    """The query-protocol ServiceApi of an awsQueryCompatible json service, or None for any other."""
    api = service_api(name)
    if api is None or not api.query_compatible or api.protocol != "json":
        return None
    data = query_model_data(name, load_model_data(name))
    view = ServiceApi(
        name=name,
        model=ServiceModel(data, service_name=name),
        protocol="query",
        target_prefix=None,
        json_version=api.json_version,
        query_compatible=True,
        query_error_shapes=dict(api.query_error_shapes),
    )
    for op_name in view.model.operation_names:
        view.operations[op_name] = view.model.operation_model(op_name)
    return view


# -- the query API's addressing: a queue's URL is the request's path ----------------------------------

def queue_path(path: str) -> bool:
    """Whether a request path names a queue (`/<account>/<name>`): the query API's queue URL."""
    return len([s for s in path.split("/") if s]) == 2


def refused_action(view: ServiceApi, action: str | None, path: str) -> AwsError | None:
    """AWS's answer to an Action the query view does not take here: unknown, or CreateQueue and ListQueues
    sent to a queue's URL (GetQueueUrl is answered there, even for another queue: recorded by AWS)."""
    op = view.operation(action) if action else None
    if op is None or (queue_path(path) and action in ("CreateQueue", "ListQueues")):
        return AwsError("InvalidAction", f"The action {action} is not valid for this endpoint.", 400)
    return None


def with_queue_url(op: OperationModel, params: dict[str, Any], host: str, scheme: str, path: str) -> dict[str, Any]:
    """An operation sent to a queue's URL without a QueueUrl parameter is about that queue."""
    if "QueueUrl" in params or not queue_path(path) or op.input_shape is None \
            or "QueueUrl" not in op.input_shape.members:
        return params
    return {**params, "QueueUrl": f"{scheme}://{host}{path}"}


def with_empty_batch(op: OperationModel, params: dict[str, Any]) -> dict[str, Any]:
    """A batch sent with no entries: the query protocol cannot write an empty list, so an absent required
    `Entries` is the empty batch the service refuses as EmptyBatchRequest (recorded by AWS), not a
    missing parameter."""
    shape = op.input_shape
    if shape is None or "Entries" in params or "Entries" not in shape.members \
            or "Entries" not in shape.required_members:
        return params
    return {**params, "Entries": []}


def missing_parameter(message: str) -> AwsError | None:
    """The query API's MissingParameter for the framework's "Value null at 'x'" (a required parameter)."""
    prefix, suffix = "1 validation error detected: Value null at '", "' failed to satisfy constraint: Member " \
                                                                    "must not be null"
    if not (message.startswith(prefix) and message.endswith(suffix)):
        return None
    name = message[len(prefix):-len(suffix)]
    if not name.isidentifier():
        return None
    return AwsError("MissingParameter", f"The request must contain the parameter {name[:1].upper()}{name[1:]}.",
                    400, headers={"x-amzn-query-error": "MissingParameter;Sender"})


def as_query_error(err: AwsError) -> AwsError:
    """An error as the query API words it: a missing queue is "… for this wsdl version." (recorded by AWS)."""
    if err.headers.get("x-amzn-query-error", "").startswith("AWS.SimpleQueueService.NonExistentQueue;"):
        return AwsError(err.code, "The specified queue does not exist for this wsdl version.", err.status,
                        headers=err.headers)
    return err
