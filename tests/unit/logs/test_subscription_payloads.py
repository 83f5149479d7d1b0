"""What a subscription filter delivers (hearth.services.logs.subscriptions): a function gets the gzipped
DATA_MESSAGE base64 under `awslogs`; a Kinesis stream gets the gzipped bytes as its record's data, as
CloudWatch Logs writes them."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

from hearth.events.delivery import Message
from hearth.services.logs.subscriptions import SubscriptionDelivery


class Router:
    def __init__(self) -> None:
        self.got: list[tuple[str, Message]] = []

    async def deliver(self, target: str, message: Message) -> None:
        self.got.append((target, message))


def test_functions_get_awslogs_and_streams_get_gzipped_bytes() -> None:
    router = Router()

    async def run() -> None:
        delivery = SubscriptionDelivery(router)  # type: ignore[arg-type]
        filters = [{"filterName": "f", "filterPattern": "", "destinationArn": arn} for arn in (
            "arn:aws:lambda:us-east-1:000000000000:function:fn",
            "arn:aws:kinesis:us-east-1:000000000000:stream/s")]
        delivery.submit("000000000000", "us-east-1", "g", "s", filters, [("1", 5, "hello")])
        await asyncio.sleep(0.05)

    asyncio.run(run())
    by_target = {target.split(":")[2]: message for target, message in router.got}
    packed = json.loads(by_target["lambda"].body)["awslogs"]["data"]
    function_doc = json.loads(gzip.decompress(base64.b64decode(packed)))
    stream_data = by_target["kinesis"].data
    assert stream_data is not None
    assert json.loads(gzip.decompress(stream_data)) == function_doc
    assert function_doc["logEvents"] == [{"id": "1", "timestamp": 5, "message": "hello"}]
