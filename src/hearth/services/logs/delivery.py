"""CloudWatch Logs' vended-log delivery: delivery destinations and their policies, delivery sources
(a part of `LogsProvider`).

It owns these operations' rules as AWS answers them: a delivery destination is an S3 bucket, a log group
or a Firehose stream named by its ARN, typed S3 / CWL / FH; "Requested Delivery Destination does not
exist in this account.". A delivery source is a resource of an AWS service that vends logs (CloudFront,
Bedrock…): Hearth serves none of those, so every PutDeliverySource is answered as AWS answers a resource
it cannot read logs from ("Cannot access provided service."), and no delivery ever runs.
"""

from __future__ import annotations

import time
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.logs.store import LogStore

# The service of a destination's resource ARN → deliveryDestinationType.
_DESTINATION_TYPES = {"s3": "S3", "logs": "CWL", "firehose": "FH", "xray": "XRAY"}


def _destination_not_found() -> AwsError:
    return AwsError("ResourceNotFoundException", "Requested Delivery Destination does not exist in this account.",
                    400)


def _source_not_found() -> AwsError:
    return AwsError("ResourceNotFoundException", "Requested Delivery Source does not exist in this account.", 400)


def _shape(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored delivery destination as Get/Describe answer it: without its policy, tags and order key."""
    return {k: v for k, v in stored.items() if k not in ("policy", "tags", "_created")}


class DeliveryOperations:
    """PutDeliveryDestination and the other delivery destination and source operations."""

    _store: LogStore

    def put_delivery_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["name"]
        config = params.get("deliveryDestinationConfiguration") or {}
        target = str(config.get("destinationResourceArn", ""))
        parts = target.split(":")
        kind = _DESTINATION_TYPES.get(parts[2]) if len(parts) > 5 else None
        if kind is None:
            raise AwsError("ValidationException", "The destination resource ARN is not valid.", 400)
        body: dict[str, Any] = {
            "name": name, "arn": f"arn:aws:logs:{ctx.region}:{ctx.account_id}:delivery-destination:{name}",
            "deliveryDestinationType": kind, "deliveryDestinationConfiguration": {"destinationResourceArn": target},
        }
        if params.get("outputFormat"):
            body["outputFormat"] = params["outputFormat"]
        if params.get("tags"):
            body["tags"] = params["tags"]
        old = self._store.resources.get(ctx.account_id, ctx.region, "delivery_destination", name)
        # `_created` orders DescribeDeliveryDestinations as AWS does: oldest first.
        stored = {**body, "_created": old["_created"] if old else time.time_ns()}
        if old is not None and "policy" in old:
            stored["policy"] = old["policy"]
        self._store.resources.put(ctx.account_id, ctx.region, "delivery_destination", name, stored)
        return {"deliveryDestination": body}

    def _delivery_destination(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        found = self._store.resources.get(ctx.account_id, ctx.region, "delivery_destination", name)
        if found is None:
            raise _destination_not_found()
        return found

    def get_delivery_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"deliveryDestination": _shape(self._delivery_destination(ctx, params["name"]))}

    def describe_delivery_destinations(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._store.resources.list(ctx.account_id, ctx.region, "delivery_destination")
        found.sort(key=lambda each: int(each.get("_created", 0)))
        return {"deliveryDestinations": [_shape(each) for each in found]}

    def delete_delivery_destination(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if not self._store.resources.delete(ctx.account_id, ctx.region, "delivery_destination", params["name"]):
            raise _destination_not_found()
        return {}

    def put_delivery_destination_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["deliveryDestinationName"]
        found = self._delivery_destination(ctx, name)
        found["policy"] = params["deliveryDestinationPolicy"]
        self._store.resources.put(ctx.account_id, ctx.region, "delivery_destination", name, found)
        return {"policy": {"deliveryDestinationPolicy": found["policy"]}}

    def get_delivery_destination_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._delivery_destination(ctx, params["deliveryDestinationName"])
        return {"policy": {"deliveryDestinationPolicy": found["policy"]} if found.get("policy") else {}}

    def delete_delivery_destination_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["deliveryDestinationName"]
        found = self._delivery_destination(ctx, name)
        found.pop("policy", None)
        self._store.resources.put(ctx.account_id, ctx.region, "delivery_destination", name, found)
        return {}

    # -- delivery sources: Hearth serves no service that vends logs -------------------------------

    def put_delivery_source(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raise AwsError("ResourceNotFoundException", "Cannot access provided service.", 400)

    def get_delivery_source(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raise _source_not_found()

    def delete_delivery_source(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raise _source_not_found()

    def describe_delivery_sources(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"deliverySources": []}
