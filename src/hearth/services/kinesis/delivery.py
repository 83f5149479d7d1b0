"""The `kinesis` handler of the DeliveryRouter: EventBridge rule targets put records into a stream here.

It owns turning a delivered message into one record: the message body as the data, its `group_id` as
the partition key (the rule target's `KinesisParameters.PartitionKeyPath` selection, or the event id:
EventBridge decides it), hashed as PutRecord hashes it. A stream that does not exist is the target's
failure (the dispatcher retries, then gives up). It never parses API requests.
"""

from __future__ import annotations

import uuid

from hearth.events.delivery import DeliveryError, Message
from hearth.services.kinesis.streams import StreamService, partition_hash

PARTITION_KEY_MAX = 256


class KinesisDelivery:
    def __init__(self, streams: StreamService) -> None:
        self.streams = streams

    async def __call__(self, target_arn: str, message: Message) -> None:
        # arn:aws:kinesis:<region>:<account>:stream/<name>
        parts = target_arn.split(":", 5)
        name = parts[5].removeprefix("stream/") if len(parts) == 6 else ""
        stream = self.streams.get(parts[4], parts[3], name) if name else None
        if stream is None:
            raise DeliveryError(f"Stream {name} under account {parts[4] if len(parts) > 4 else ''} not found.",
                                "ResourceNotFoundException")
        key = (message.group_id or str(uuid.uuid4()))[:PARTITION_KEY_MAX]
        data = message.data if message.data is not None else message.body.encode()
        self.streams.put(stream, [(key, data, partition_hash(key))])
