"""The errors SQS answers, as `AwsError`s that render exactly as AWS's JSON protocol does.

SQS moved from the query protocol to JSON but kept its query error codes: AWS sends the JSON error's
shape name in `__type` (e.g. `QueueDoesNotExist`) and the legacy code in the `x-amzn-query-error`
header (`AWS.SimpleQueueService.NonExistentQueue;Sender`). botocore reports the header's code as
`Error.Code` and picks the modelled exception class (`client.exceptions.QueueDoesNotExist`) from the
shape name, so both must be right. This module never decides *when* an error happens.
"""

from __future__ import annotations

from hearth.aws.errors import AwsError


def sqs_error(shape: str, query_code: str, message: str, status: int = 400) -> AwsError:
    """An error whose JSON `__type` is `shape` and whose query code (what callers see) is `query_code`."""
    return AwsError(shape, message, status, headers={"x-amzn-query-error": f"{query_code};Sender"})


def queue_does_not_exist() -> AwsError:
    return sqs_error("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
                     "The specified queue does not exist.")


def invalid_parameter(message: str) -> AwsError:
    # The JSON protocol's __type is AWS's exception name, the query code the legacy one (recorded by AWS).
    return sqs_error("InvalidParameterValueException", "InvalidParameterValue", message)


def invalid_parameter_value(name: str, value: object, reason: str) -> AwsError:
    return invalid_parameter(f"Value {value} for parameter {name} is invalid. Reason: {reason}")


def missing_parameter(name: str) -> AwsError:
    return sqs_error("MissingRequiredParameterException", "MissingParameter",
                     f"The request must contain the parameter {name}.")


def invalid_attribute_name(name: str) -> AwsError:
    return sqs_error("InvalidAttributeName", "InvalidAttributeName", f"Unknown Attribute {name}.")


def invalid_attribute_value(name: str, detail: str = "") -> AwsError:
    message = f"Invalid value for the parameter {name}." + (f" Reason: {detail}" if detail else "")
    return sqs_error("InvalidAttributeValue", "InvalidAttributeValue", message)


def receipt_handle_invalid(handle: str) -> AwsError:
    return sqs_error("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
                     f'The input receipt handle "{handle}" is not a valid receipt handle.')


def message_not_inflight() -> AwsError:
    return sqs_error("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight",
                     "Message does not exist or is not available for visibility timeout change.")


def queue_name_exists(attribute: str) -> AwsError:
    return sqs_error("QueueNameExists", "QueueAlreadyExists",
                     f"A queue already exists with the same name and a different value for attribute {attribute}")


def purge_in_progress(queue_arn: str) -> AwsError:
    return sqs_error("PurgeQueueInProgress", "AWS.SimpleQueueService.PurgeQueueInProgress",
                     f"Only one PurgeQueue operation on {queue_arn.rpartition(':')[2]} is allowed every 60 seconds.")


def empty_batch(entry_shape: str) -> AwsError:
    return sqs_error("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
                     f"There should be at least one {entry_shape} in the request.")


def too_many_entries(count: int) -> AwsError:
    return sqs_error("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                     f"Maximum number of entries per request are 10. You have sent {count}.")


def ids_not_distinct(entry_id: str) -> AwsError:
    return sqs_error("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                     f"Id {entry_id} repeated.")


def invalid_batch_entry_id() -> AwsError:
    return sqs_error("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
                     "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                     "It can be at most 80 letters long.")


def batch_too_long(size: int, limit: int) -> AwsError:
    return sqs_error("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
                     f"Batch requests cannot be longer than {limit} bytes. You have sent {size} bytes.")


def invalid_address(url: str) -> AwsError:
    return sqs_error("InvalidAddress", "InvalidAddress", f"The address {url} is not valid for this endpoint.")


def too_many_tags() -> AwsError:
    return invalid_parameter("Too many tags added for queue. Queue can have at most 50 tags.")
