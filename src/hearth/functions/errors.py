"""The function domain's errors: what went wrong, in the words AWS Lambda uses for it.

It owns the exception types `hearth.functions` raises (never `AwsError`: the domain knows nothing of
HTTP statuses or error-body casing) and the exact texts, each checked against recorded AWS responses
(shared/reference/aws-recorded). The Lambda providers map them to AWS errors
(`hearth.services.lambda_.errors`). It never decides when to raise them.

Exception tree::

    FunctionsError                 message: AWS's text
    ├── NotFound                   the function, version, alias, statement … does not exist
    ├── AccessDenied               another account's resource, and no policy allows the caller
    ├── InvalidParameter           a request the domain refuses (`typed`: AWS's body carries Type=User)
    ├── Conflict                   the resource exists already, or is busy / in the wrong state
    ├── PreconditionFailed         a RevisionId that is not the current one
    └── TooLarge                   code or layers over Lambda's size limits
"""

from __future__ import annotations


class FunctionsError(Exception):
    """Base of the function domain's errors."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(FunctionsError):
    pass


class AccessDenied(FunctionsError):
    pass


class InvalidParameter(FunctionsError):
    def __init__(self, message: str, *, typed: bool = True) -> None:
        super().__init__(message)
        self.typed = typed  # AWS's body carries "Type": "User" (not for every message: recorded)


class Conflict(FunctionsError):
    pass


class PreconditionFailed(FunctionsError):
    pass


class TooLarge(FunctionsError):
    pass


MSG_PRECONDITION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def not_found(arn: str) -> NotFound:
    """The ARN is qualified when the caller named a qualifier (or invoked $LATEST implicitly)."""
    return NotFound(f"Function not found: {arn}")


def wrong_region(their_region: str, our_region: str) -> NotFound:
    return NotFound(f"Functions from '{their_region}' are not reachable in this region ('{our_region}')")


def access_denied(caller_account: str, action: str, arn: str) -> AccessDenied:
    """Another account's function, and no statement of its resource policy lets the caller in."""
    return AccessDenied(
        f"User: arn:aws:iam::{caller_account}:root is not authorized to perform: lambda:{action} "
        "on resource: "
        f"{arn} because no resource-based policy allows the lambda:{action} action"
    )


def invalid_parameter(message: str) -> InvalidParameter:
    return InvalidParameter(message)


def conflict(message: str) -> Conflict:
    return Conflict(message)


def already_exists(name: str) -> Conflict:
    return conflict(f"Function already exist: {name}")


def update_in_progress(arn: str) -> Conflict:
    return conflict(
        f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
    )


def wrong_state(state: str) -> Conflict:
    return conflict(
        f"The operation cannot be performed at this time. The function is currently in the following "
        f"state: {state}"
    )


def precondition_failed() -> PreconditionFailed:
    return PreconditionFailed(MSG_PRECONDITION)


def qualifier_mismatch() -> InvalidParameter:
    return invalid_parameter(
        "The derived qualifier from the function name does not match the specified qualifier."
    )


def too_large(message: str) -> TooLarge:
    return TooLarge(message)


def resource_not_found(message: str) -> NotFound:
    return NotFound(message)


def precondition_failed_for(api: str) -> PreconditionFailed:
    """A text that names the read API that returns the current RevisionId (GetPolicy, GetLayerPolicy)."""
    return PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. "
        f"Call the {api} API to retrieve the latest Revision Id"
    )


def alias_not_found(arn: str) -> NotFound:
    """GetAlias, AddPermission, GetPolicy … on a missing alias."""
    return resource_not_found(f"Cannot find alias arn: {arn}")


def alias_not_found_for_update(arn: str) -> NotFound:
    return resource_not_found(f"Alias not found: {arn}")


def alias_exists(arn: str) -> Conflict:
    return conflict(f"Alias already exists: {arn}")


def latest_in_routing() -> InvalidParameter:
    """AWS's body for this one carries no `Type` (recorded)."""
    return InvalidParameter("$LATEST is not supported for an alias pointing to more than 1 version", typed=False)


def statement_exists(sid: str) -> Conflict:
    return conflict(
        f"The statement id ({sid}) provided already exists. Please provide a new statement id, "
        "or remove the existing statement."
    )


def statement_not_found(sid: str) -> NotFound:
    return resource_not_found(f"Statement {sid} is not found in resource policy.")


NO_POLICY = "No policy is associated with the given resource."
NOT_EXIST = "The resource you requested does not exist."
