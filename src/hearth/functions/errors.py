"""The AWS errors of the function domain, spelled exactly as AWS Lambda spells them.

It owns the texts, codes, statuses and body casing (`Message` vs `message`) of the errors the
control plane raises; each was checked against recorded AWS responses
(shared/reference/aws-recorded). It never decides when to raise them.
"""

from __future__ import annotations

from hearth.aws.errors import AwsError

MSG_PRECONDITION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def not_found(arn: str) -> AwsError:
    """404; the ARN is qualified when the caller named a qualifier (or invoked $LATEST implicitly)."""
    return AwsError(
        "ResourceNotFoundException",
        f"Function not found: {arn}",
        404,
        fields={"Type": "User"},
        message_key="Message",
    )


def wrong_region(their_region: str, our_region: str) -> AwsError:
    return AwsError(
        "ResourceNotFoundException",
        f"Functions from '{their_region}' are not reachable in this region ('{our_region}')",
        404,
        fields={"Type": "User"},
        message_key="Message",
    )


def access_denied(caller_account: str, action: str, arn: str) -> AwsError:
    """Another account's function: AWS answers 403 AccessDeniedException (no resource policy yet)."""
    return AwsError(
        "AccessDeniedException",
        f"User: arn:aws:iam::{caller_account}:root is not authorized to perform: lambda:{action} "
        "on resource: "
        f"{arn} because no resource-based policy allows the lambda:{action} action",
        403,
        message_key="Message",
    )


def invalid_parameter(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message, 400, fields={"Type": "User"})


def conflict(message: str) -> AwsError:
    return AwsError("ResourceConflictException", message, 409, fields={"Type": "User"})


def already_exists(name: str) -> AwsError:
    return conflict(f"Function already exist: {name}")


def update_in_progress(arn: str) -> AwsError:
    return conflict(
        f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
    )


def wrong_state(state: str) -> AwsError:
    return conflict(
        f"The operation cannot be performed at this time. The function is currently in the following "
        f"state: {state}"
    )


def precondition_failed() -> AwsError:
    return AwsError("PreconditionFailedException", MSG_PRECONDITION, 412, fields={"Type": "User"})


def qualifier_mismatch() -> AwsError:
    return invalid_parameter(
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def too_large(message: str) -> AwsError:
    """413 RequestEntityTooLargeException (AWS's body carries no Type here)."""
    return AwsError("RequestEntityTooLargeException", message, 413)


def resource_not_found(message: str) -> AwsError:
    """404 ResourceNotFoundException with AWS's `Type` and capitalised `Message`."""
    return AwsError("ResourceNotFoundException", message, 404, fields={"Type": "User"}, message_key="Message")


def precondition_failed_for(api: str) -> AwsError:
    """412 whose text names the read API that returns the current RevisionId (GetPolicy, GetLayerPolicy)."""
    return AwsError(
        "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. "
        f"Call the {api} API to retrieve the latest Revision Id",
        412,
        fields={"Type": "User"},
    )


def alias_not_found(arn: str) -> AwsError:
    """GetAlias, AddPermission, GetPolicy … on a missing alias."""
    return resource_not_found(f"Cannot find alias arn: {arn}")


def alias_not_found_for_update(arn: str) -> AwsError:
    return resource_not_found(f"Alias not found: {arn}")


def alias_exists(arn: str) -> AwsError:
    return conflict(f"Alias already exists: {arn}")


def latest_in_routing() -> AwsError:
    """AWS's body for this one carries no `Type` (recorded)."""
    return AwsError(
        "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to more than 1 version", 400,
        fields={"Type": None},
    )


def statement_exists(sid: str) -> AwsError:
    return conflict(
        f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
        "or remove the existing statement."
    )


def statement_not_found(sid: str) -> AwsError:
    return resource_not_found(f"Statement {sid} is not found in resource policy.")


NO_POLICY = "No policy is associated with the given resource."
NOT_EXIST = "The resource you requested does not exist."
