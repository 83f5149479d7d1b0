"""The resource types CloudFormation can create on Hearth, by type name.

A type that is not here fails its stack with a reason naming it: never a silent fake.
"""

from __future__ import annotations

from hearth.services.cloudformation.resources import (
    apigateway,
    containers,
    identity,
    lambda_,
    messaging,
    metadata,
    nested,
    network,
    storage,
)
from hearth.services.cloudformation.resources.base import Handler

REGISTRY: dict[str, Handler] = {
    handler.type: handler() for handler in (*lambda_.HANDLERS, *messaging.HANDLERS, *storage.HANDLERS, *nested.HANDLERS,
                                    *apigateway.HANDLERS, *containers.HANDLERS, *metadata.HANDLERS,
                                    *identity.HANDLERS, *network.HANDLERS)
}
