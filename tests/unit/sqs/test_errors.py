"""SQS errors render as AWS's JSON protocol does: shape name in __type, legacy code in x-amzn-query-error."""

from __future__ import annotations

import json

from hearth.aws.models import service_api
from hearth.aws.protocols import json_
from hearth.services.sqs import errors


def test_queue_does_not_exist_renders_like_aws() -> None:
    api = service_api("sqs")
    assert api is not None
    response = json_.render_error(api, errors.queue_does_not_exist(), "rid")
    assert response.status == 400
    assert response.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert isinstance(response.body, bytes)
    body = json.loads(response.body)
    assert body == {"__type": "QueueDoesNotExist", "message": "The specified queue does not exist."}


def test_unmodelled_errors_keep_their_query_code() -> None:
    api = service_api("sqs")
    assert api is not None
    response = json_.render_error(api, errors.missing_parameter("MessageBody"), "rid")
    assert response.headers["x-amzn-query-error"] == "MissingParameter;Sender"
