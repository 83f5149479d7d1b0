from __future__ import annotations

import pytest

from hearth.esm.model import (
    CREATING,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    Mapping,
    MappingConfig,
    TransitionError,
)


def _mapping(kind: str = "sqs", state: str = CREATING, **cfg: object) -> Mapping:
    config = MappingConfig(batch_size=10 if kind == "sqs" else 100, **cfg)  # type: ignore[arg-type]
    return Mapping("u-1", "000000000000", "us-east-1", "arn:aws:sqs:us-east-1:000000000000:q", kind,  # type: ignore[arg-type]
                   "arn:aws:lambda:us-east-1:000000000000:function:f", True, state, config, 1.5)


def test_listed_transitions_only() -> None:
    m = _mapping().moved(ENABLED)
    assert m.fires
    assert m.moved(DISABLING).moved(DISABLED).moved(ENABLING).moved(ENABLED).state == ENABLED
    with pytest.raises(TransitionError):
        m.moved(ENABLING)
    with pytest.raises(TransitionError):
        m.moved(DELETING).moved(ENABLED)
    assert not m.moved(DISABLING).fires


def test_queue_shape_has_no_stream_fields() -> None:
    api = _mapping(max_concurrency=3).to_api()
    assert api["StateTransitionReason"] == "USER_INITIATED" and api["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert not {"StartingPosition", "ParallelizationFactor", "DestinationConfig", "LastProcessingResult"} & set(api)
    assert api["EventSourceMappingArn"] == "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:u-1"


def test_stream_shape_defaults() -> None:
    api = _mapping("kinesis", starting_position="LATEST", on_failure="arn:aws:sqs:us-east-1:0:q").to_api()
    assert api["DestinationConfig"] == {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:0:q"}}
    assert (api["MaximumRetryAttempts"], api["MaximumRecordAgeInSeconds"], api["ParallelizationFactor"]) == (-1, -1, 1)
    assert api["LastProcessingResult"] == "No records processed" and api["StateTransitionReason"] == "User action"


def test_config_round_trips() -> None:
    cfg = MappingConfig(batch_size=5, filters=('{"a": ["b"]}',), report_failures=True, bisect=True)
    assert MappingConfig.from_json(cfg.to_json()) == cfg
