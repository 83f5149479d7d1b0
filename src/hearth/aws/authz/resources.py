"""Which IAM action and which resource ARN a request is, for policy evaluation.

It owns the per-service mapping from an operation's parameters to the ARN IAM's Service Authorization
Reference lists for it (functions, queues, topics, IAM entities, log groups, streams, rules). An
operation without a derivable resource is judged on `*`. It never looks anything up: an ARN is built
from the request alone (a role's path, for example, is not known here; IAM's own checks use names).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# botocore signing name -> IAM service prefix, where they differ.
_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


# Operations whose IAM action is not named after them (the Service Authorization Reference's tables).
_ACTIONS = {
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "lambda:InvokeFunction",
    ("lambda", "GetLayerVersionByArn"): "lambda:GetLayerVersion",
    ("lambda", "GetFunctionConfiguration"): "lambda:GetFunctionConfiguration",
}


# S3's actions (the Service Authorization Reference): most operations act as one of a few actions.
_S3_ACTIONS = {
    "HeadObject": "GetObject", "CopyObject": "PutObject", "UploadPart": "PutObject", "UploadPartCopy": "PutObject",
    "CreateMultipartUpload": "PutObject", "CompleteMultipartUpload": "PutObject", "DeleteObjects": "DeleteObject",
    "ListParts": "ListMultipartUploadParts", "ListMultipartUploads": "ListBucketMultipartUploads",
    "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket", "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions", "ListBuckets": "ListAllMyBuckets",
    "DeleteBucketTagging": "PutBucketTagging", "GetBucketCors": "GetBucketCORS", "PutBucketCors": "PutBucketCORS",
    "DeleteBucketCors": "PutBucketCORS", "GetBucketEncryption": "GetEncryptionConfiguration",
    "PutBucketEncryption": "PutEncryptionConfiguration", "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock", "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock", "DeleteBucketOwnershipControls":
    "PutBucketOwnershipControls",
}


def action_name(service: str, operation: str) -> str:
    if service == "s3":
        return f"s3:{_S3_ACTIONS.get(operation, operation)}"
    found = _ACTIONS.get((service, operation))
    return found if found is not None else f"{_PREFIX.get(service, service)}:{operation}"


def resource_arn(service: str, operation: str, params: Mapping[str, Any], region: str, account: str) -> str:
    build = _BUILDERS.get(service)
    if build is None:
        return "*"
    return build(operation, params, region, account) or "*"


# Operations that hand a role to a service also need iam:PassRole on it (or a user allowed only to create
# functions could run code with any role of the account).
_PASSES_ROLE = {("lambda", "CreateFunction"): "lambda.amazonaws.com",
                ("lambda", "UpdateFunctionConfiguration"): "lambda.amazonaws.com"}


def implied_actions(service: str, operation: str,
                    params: Mapping[str, Any]) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(action, resource, extra condition keys) that the operation needs besides its own action."""
    to_service = _PASSES_ROLE.get((service, operation))
    role = params.get("Role")
    if to_service is None or not isinstance(role, str) or not role:
        return []
    return [("iam:PassRole", role, {"iam:passedtoservice": [to_service]})]


def _lambda(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    name = params.get("FunctionName")
    if isinstance(name, str) and name:
        if name.startswith("arn:"):
            parts = name.split(":")
            return ":".join(parts[:7])
        if ":" in name:  # account:function:name or name:qualifier
            parts = name.split(":")
            if len(parts) >= 3 and parts[1] == "function":
                return f"arn:aws:lambda:{region}:{parts[0]}:function:{parts[2]}"
            name = parts[0]
        return f"arn:aws:lambda:{region}:{account}:function:{name}"
    layer = params.get("LayerName")
    if isinstance(layer, str) and layer:
        return layer if layer.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:layer:{layer}"
    uuid = params.get("UUID")
    if isinstance(uuid, str) and uuid:
        return f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"
    resource = params.get("Resource")
    if isinstance(resource, str) and resource.startswith("arn:"):
        return resource
    return None


def _sqs(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    url = params.get("QueueUrl")
    if isinstance(url, str) and url:
        segments = [s for s in urlsplit(url).path.split("/") if s]
        if len(segments) == 2:
            return f"arn:aws:sqs:{region}:{segments[0]}:{segments[1]}"
        return None
    name = params.get("QueueName")
    if isinstance(name, str) and name:
        owner = params.get("QueueOwnerAWSAccountId") or account
        return f"arn:aws:sqs:{region}:{owner}:{name}"
    return None


def _sns(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    for key in ("TopicArn", "ResourceArn", "TargetArn"):
        value = params.get(key)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    sub = params.get("SubscriptionArn")
    if isinstance(sub, str) and sub.count(":") >= 6:
        return sub.rsplit(":", 1)[0]
    if operation == "CreateTopic" and params.get("Name"):
        return f"arn:aws:sns:{region}:{account}:{params['Name']}"
    return None


def _iam(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"),
                      ("InstanceProfileName", "instance-profile")):
        value = params.get(key)
        if isinstance(value, str) and value:
            return f"arn:aws:iam::{account}:{kind}/{value}"
    arn = params.get("PolicyArn")
    if isinstance(arn, str):
        return arn
    if operation == "CreatePolicy" and params.get("PolicyName"):
        return f"arn:aws:iam::{account}:policy{params.get('Path') or '/'}{params['PolicyName']}"
    return None


def _sts(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    if operation == "GetFederationToken" and isinstance(params.get("Name"), str):
        return f"arn:aws:sts::{account}:federated-user/{params['Name']}"
    arn = params.get("RoleArn")
    return arn if isinstance(arn, str) else None


def _logs(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    group = params.get("logGroupName")
    if isinstance(group, str) and group:
        stream = params.get("logStreamName")
        if isinstance(stream, str) and stream and operation in ("PutLogEvents", "GetLogEvents", "CreateLogStream"):
            return f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}"
        return f"arn:aws:logs:{region}:{account}:log-group:{group}:*"
    return None


def _kinesis(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    arn = params.get("StreamARN")
    if isinstance(arn, str) and arn:
        return arn
    name = params.get("StreamName")
    return f"arn:aws:kinesis:{region}:{account}:stream/{name}" if isinstance(name, str) and name else None


def _events(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    rule = params.get("Rule") or (params.get("Name") if "Rule" in operation else None)
    bus = params.get("EventBusName")
    if isinstance(rule, str) and rule:
        if isinstance(bus, str) and bus and bus != "default":
            return f"arn:aws:events:{region}:{account}:rule/{bus}/{rule}"
        return f"arn:aws:events:{region}:{account}:rule/{rule}"
    if isinstance(bus, str) and bus:
        return bus if bus.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{bus}"
    return None


def _s3(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    bucket = params.get("Bucket")
    if not isinstance(bucket, str) or not bucket:
        return None
    key = params.get("Key")
    return f"arn:aws:s3:::{bucket}/{key}" if isinstance(key, str) and key else f"arn:aws:s3:::{bucket}"


def _dynamodb(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    """A table (or its index, or its stream) by name or ARN; a batch or transaction by its first table
    (decision: the evaluator judges one resource per request)."""
    name = params.get("TableName") or params.get("ResourceArn") or params.get("StreamArn")
    if not name:
        items = params.get("RequestItems") or params.get("TransactItems")
        if isinstance(items, dict) and items:
            name = next(iter(items))
        elif isinstance(items, list) and items and isinstance(items[0], dict):
            first: Any = next(iter(items[0].values()), {})
            name = first.get("TableName") if isinstance(first, dict) else None
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:"):
        return name
    index = params.get("IndexName")
    table = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
    return f"{table}/index/{index}" if isinstance(index, str) and index else table


def _ssm(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    name = params.get("Name") or params.get("Path") or params.get("ResourceId")
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:"):
        return name
    return f"arn:aws:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}"


def _ecr(operation: str, params: Mapping[str, Any], region: str, account: str) -> str | None:
    arn = params.get("resourceArn")
    if isinstance(arn, str) and arn:
        return arn
    name = params.get("repositoryName")
    if not isinstance(name, str) or not name:
        return None
    registry = params.get("registryId") or account
    return f"arn:aws:ecr:{region}:{registry}:repository/{name}"


_BUILDERS = {"lambda": _lambda, "sqs": _sqs, "sns": _sns, "iam": _iam, "sts": _sts, "logs": _logs,
             "kinesis": _kinesis, "events": _events, "dynamodb": _dynamodb, "dynamodbstreams": _dynamodb,
             "ssm": _ssm, "s3": _s3, "ecr": _ecr}
