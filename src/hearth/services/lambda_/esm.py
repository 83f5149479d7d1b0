"""Lambda's event source mapping API: Create/Get/Update/Delete/ListEventSourceMappings.

It owns AWS's validation of mappings for the sources Hearth has (queues: `arn:aws:sqs:…`, streams:
`arn:aws:kinesis:…:stream/…` and a table's `arn:aws:dynamodb:…:table/…/stream/…`), their defaults,
and the answers' shapes (through `Mapping.to_api`).
Texts were checked against shared/reference/aws-recorded (07_*, 00_error_catalog.json) where AWS was
recorded; the others follow AWS's published wording. It never polls or invokes (hearth.esm does)
and never changes functions, queues or streams.

Decisions where AWS is unclear: checks run in the order arn -> parameters the source kind does not
take -> function -> source existence -> batch size and window -> filters -> duplicates; a mapping
may be updated in any state but Deleting; ListEventSourceMappings' FunctionName matches the
function's name, and its qualifier too when one is given.
"""

from __future__ import annotations

import dataclasses
import uuid as uuidlib
from datetime import datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.esm import batching
from hearth.esm.kinesis_poller import parse_stream_arn
from hearth.esm.manager import MappingManager
from hearth.esm.model import (
    CREATING,
    DEFAULT_BATCH,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    UPDATING,
    Mapping,
    MappingConfig,
    SourceKind,
)
from hearth.functions import errors
from hearth.functions.names import InvalidFunctionRef, function_arn, parse_function_ref
from hearth.functions.service import FunctionService
from hearth.services.kinesis.streams import StreamService
from hearth.services.lambda_.errors import maps_domain_errors
from hearth.services.sqs.queues import QueueService, parse_queue_arn

STREAM_ONLY = ("ParallelizationFactor", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
               "MaximumRecordAgeInSeconds", "TumblingWindowInSeconds")
QUEUE_ONLY = ("ScalingConfig",)
DESTINATION_SERVICES = ("sqs", "sns")
DEFAULT_MAX_ITEMS = 100
MAX_FILTERS = 5


def invalid(message: str) -> errors.InvalidParameter:
    return errors.invalid_parameter(message)


def not_found() -> errors.NotFound:
    return errors.resource_not_found(errors.NOT_EXIST)


def unsupported(parameter: str) -> errors.InvalidParameter:
    return invalid(f"Unsupported {parameter} parameter for given event source mapping type.")


def source_kind(arn: str | None) -> SourceKind:
    if arn and parse_queue_arn(arn) is not None:
        return "sqs"
    if arn and parse_stream_arn(arn) is not None:
        return "kinesis"
    if arn and _is_dynamodb_stream(arn):
        return "dynamodb"
    raise invalid("Unrecognized event source.")


def _is_dynamodb_stream(arn: str) -> bool:
    """`arn:aws:dynamodb:region:account:table/NAME/stream/LABEL`."""
    parts = arn.split(":", 5)
    rest = parts[5].split("/") if len(parts) == 6 else []
    return parts[:3] == ["arn", "aws", "dynamodb"] and len(rest) == 4 and rest[0] == "table" and rest[2] == "stream"


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


@maps_domain_errors
class EventSourceMappingProvider:
    def __init__(self, functions: FunctionService, queues: QueueService, streams: StreamService,
                 manager: MappingManager) -> None:
        self._functions = functions
        self._queues = queues
        self._streams = streams
        self._manager = manager

    # -- checks -------------------------------------------------------------------------------------

    def _function_arn(self, ctx: RequestContext, name: str) -> str:
        """The mapping's FunctionArn (qualified when the caller named a qualifier); the function must exist."""
        try:
            ref = self._functions.parse_ref(ctx.account_id, ctx.region, name, None, action="CreateEventSourceMapping")
            self._functions.resolve_ref(ref)
        except errors.NotFound:
            raise invalid("Function does not exist") from None
        return function_arn(ctx.region, ref.account or ctx.account_id, ref.name, ref.qualifier)

    def _check_source(self, ctx: RequestContext, kind: SourceKind, arn: str) -> None:
        if kind == "sqs":
            queue = self._queues.by_arn(arn)
            if queue is None or queue.account != ctx.account_id or queue.region != ctx.region:
                raise invalid("Error occurred while ReceiveMessage. SQS Error Code: "
                              "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue "
                              "does not exist for this wsdl version.")
            return
        if kind == "dynamodb":
            if arn.split(":")[3:5] != [ctx.region, ctx.account_id] or not self._manager.stream_exists(kind, arn):
                raise invalid(f"Stream not found: {arn}")
            return
        parsed = parse_stream_arn(arn)
        assert parsed is not None
        region, account, name = parsed
        if account != ctx.account_id or region != ctx.region or self._streams.get(account, region, name) is None:
            raise invalid(f"Stream not found: {arn}")

    @staticmethod
    def _check_kind_params(kind: SourceKind, params: dict[str, Any], *, creating: bool) -> None:
        if kind == "sqs":
            if creating and params.get("StartingPosition") is not None:
                raise invalid("StartingPosition is not valid for SQS event sources.")
            if params.get("DestinationConfig"):
                raise unsupported("DestinationConfig")
            for name in STREAM_ONLY:
                if params.get(name) is not None:
                    raise unsupported(name)
            return
        for name in QUEUE_ONLY:
            if params.get(name) is not None:
                raise unsupported(name)
        dest = params.get("DestinationConfig") or {}
        if dest.get("OnSuccess"):
            raise unsupported("DestinationConfig")
        if creating:
            position = params.get("StartingPosition")
            if position is None:
                raise invalid("1 validation error detected: Value null at 'startingPosition' failed to satisfy "
                              "constraint: Member must not be null.")
            if position == "AT_TIMESTAMP" and kind == "dynamodb":
                # DynamoDB streams are read from TRIM_HORIZON or LATEST only.
                raise invalid(f"Unsupported starting position for arn type: {params.get('EventSourceArn')}")
            if position == "AT_TIMESTAMP" and params.get("StartingPositionTimestamp") is None:
                raise invalid("StartingPositionTimestamp must be set when StartingPosition is AT_TIMESTAMP.")

    @staticmethod
    def _config(kind: SourceKind, params: dict[str, Any], base: MappingConfig | None, *,
                fifo: bool = False) -> MappingConfig:
        """The merged configuration: `params` over `base` (update) or over the kind's defaults (create)."""
        cfg = base or MappingConfig(batch_size=DEFAULT_BATCH[kind])
        changes: dict[str, Any] = {}
        simple = {"BatchSize": "batch_size", "MaximumBatchingWindowInSeconds": "window_s",
                  "ParallelizationFactor": "parallelization", "MaximumRetryAttempts": "max_retries",
                  "MaximumRecordAgeInSeconds": "max_record_age_s", "BisectBatchOnFunctionError": "bisect",
                  "TumblingWindowInSeconds": "tumbling_window_s", "KMSKeyArn": "kms_key_arn"}
        for api, attr in simple.items():
            if params.get(api) is not None:
                changes[attr] = params[api]
        if base is None:
            changes["starting_position"] = params.get("StartingPosition")
            changes["starting_timestamp"] = _timestamp(params.get("StartingPositionTimestamp"))
        if "FunctionResponseTypes" in params:
            changes["report_failures"] = "ReportBatchItemFailures" in (params["FunctionResponseTypes"] or [])
        if "ScalingConfig" in params:
            changes["max_concurrency"] = (params["ScalingConfig"] or {}).get("MaximumConcurrency")
        if "FilterCriteria" in params:
            filters = tuple(str(f.get("Pattern", "")) for f in (params["FilterCriteria"] or {}).get("Filters") or [])
            if len(filters) > MAX_FILTERS:
                raise invalid(f"The number of filters exceeds the limit of {MAX_FILTERS}.")
            try:
                batching.compile_filters(filters)
            except batching.FilterError as err:
                raise invalid(str(err)) from None
            changes["filters"] = filters
        dest = params.get("DestinationConfig")
        if dest is not None:
            target = ((dest or {}).get("OnFailure") or {}).get("Destination") or None
            if target is not None:
                service = target.split(":")[2] if target.count(":") >= 5 else ""
                if service not in DESTINATION_SERVICES:
                    raise invalid(f"The provided destination config DestinationConfig(onSuccess=null, "
                                  f"onFailure=OnFailure(destination={target})) is invalid.")
            changes["on_failure"] = target
        cfg = dataclasses.replace(cfg, **changes)
        age = cfg.max_record_age_s
        if kind != "sqs" and age != -1 and not 60 <= age <= 604_800:
            raise invalid(f"1 validation error detected: Value '{age}' at 'maximumRecordAgeInSeconds' failed to "
                          "satisfy constraint: Member must have value greater than or equal to 60")
        if kind == "sqs":
            if fifo and cfg.batch_size > 10:
                raise invalid("Batch size for FIFO queues must be between 1 and 10.")
            if cfg.batch_size > 10 and cfg.window_s < 1:
                raise invalid("Maximum batch window in seconds must be greater than 0 if maximum batch size is "
                              "greater than 10")
        return cfg

    def _fifo(self, kind: SourceKind, arn: str) -> bool:
        queue = self._queues.by_arn(arn) if kind == "sqs" else None
        return queue is not None and queue.fifo

    # -- operations ---------------------------------------------------------------------------------

    def create_event_source_mapping(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        source = params.get("EventSourceArn")
        kind = source_kind(source)
        assert source is not None
        self._check_kind_params(kind, params, creating=True)
        fn_arn = self._function_arn(ctx, params["FunctionName"])
        self._check_source(ctx, kind, source)
        cfg = self._config(kind, params, None, fifo=self._fifo(kind, source))
        for existing in self._manager.list(ctx.account_id, ctx.region):
            if existing.source_arn == source and existing.function_arn == fn_arn:
                raise errors.conflict(
                    f'The event source arn (" {source} ") and function (" {params["FunctionName"]} ") provided '
                    f"mapping already exists. Please update or delete the existing mapping with UUID {existing.uuid}")
        extra = {k: params[k] for k in ("MetricsConfig", "LoggingConfig") if params.get(k)}
        mapping = Mapping(uuid=str(uuidlib.uuid4()), account=ctx.account_id, region=ctx.region, source_arn=source,
                          kind=kind, function_arn=fn_arn, enabled=params.get("Enabled", True) is not False,
                          state=CREATING, config=cfg, last_modified=self._manager.now(), extra=extra)
        saved = self._manager.save(mapping)
        if params.get("Tags"):
            self._manager.store.set_tags(saved.uuid, dict(params["Tags"]))
        return saved.to_api()

    def _owned(self, ctx: RequestContext, uuid: str) -> Mapping:
        mapping = self._manager.get(uuid)
        if mapping is None or mapping.account != ctx.account_id or mapping.region != ctx.region:
            raise not_found()
        return mapping

    def get_event_source_mapping(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._owned(ctx, params["UUID"]).to_api()

    def update_event_source_mapping(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        mapping = self._owned(ctx, params["UUID"])
        if mapping.state == DELETING:
            raise errors.conflict("The operation cannot be performed at this time. The event source mapping is "
                                  f"currently in the following state: {mapping.state}")
        self._check_kind_params(mapping.kind, params, creating=False)
        fn_arn = self._function_arn(ctx, params["FunctionName"]) if params.get("FunctionName") else mapping.function_arn
        cfg = self._config(mapping.kind, params, mapping.config, fifo=self._fifo(mapping.kind, mapping.source_arn))
        enabled = mapping.enabled if params.get("Enabled") is None else bool(params["Enabled"])
        state = (ENABLING if enabled else DISABLING) if enabled != mapping.enabled else UPDATING
        extra: dict[str, Any] = dict(mapping.extra)
        extra.update({k: params[k] for k in ("MetricsConfig", "LoggingConfig") if k in params})
        # A mapping still settling (Creating, Enabling …) is rewritten in place; its settle task sees the new intent.
        if mapping.state in (ENABLED, DISABLED):
            updated = self._manager.touch(mapping, state, config=cfg, enabled=enabled, function_arn=fn_arn,
                                          extra=extra)
        else:
            updated = self._manager.replace(mapping, config=cfg, enabled=enabled, function_arn=fn_arn, extra=extra,
                                            last_modified=self._manager.now())
        return self._manager.save(updated).to_api()

    def delete_event_source_mapping(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        mapping = self._owned(ctx, params["UUID"])
        if mapping.state == DELETING:
            return mapping.to_api()
        return self._manager.save(self._manager.touch(mapping, DELETING)).to_api()

    def list_event_source_mappings(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        mappings = self._manager.list(ctx.account_id, ctx.region)
        if params.get("EventSourceArn"):
            mappings = [m for m in mappings if m.source_arn == params["EventSourceArn"]]
        if params.get("FunctionName"):
            try:
                ref = parse_function_ref(params["FunctionName"])
            except InvalidFunctionRef:
                raise invalid("Function does not exist") from None

            def same(m: Mapping) -> bool:
                theirs = parse_function_ref(m.function_arn)
                return theirs.name == ref.name and (ref.qualifier is None or theirs.qualifier == ref.qualifier)

            mappings = [m for m in mappings if same(m)]
        start = 0
        if params.get("Marker"):
            try:
                start = int(params["Marker"])
            except ValueError:
                raise invalid("Invalid marker.") from None
        size = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
        page = mappings[start:start + size]
        out: dict[str, Any] = {"EventSourceMappings": [m.to_api() for m in page]}
        if start + size < len(mappings):
            out["NextMarker"] = str(start + size)
        return out

