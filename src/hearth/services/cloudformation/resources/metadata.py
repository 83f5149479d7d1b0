"""CloudFormation's AWS::CDK::Metadata: the resource every AWS CDK stack carries to report which
construct libraries it was made with. In AWS it makes nothing a caller can read (its `Analytics`
string goes to AWS's usage statistics); on Hearth it makes nothing at all and sends nothing anywhere.
`Ref` is a generated id, as AWS's is, and it has no attributes."""

from __future__ import annotations

import uuid
from typing import Any

from hearth.services.cloudformation.resources.base import Handler, Outcome, ResourceRequest


class CdkMetadata(Handler):
    type = "AWS::CDK::Metadata"

    async def create(self, r: ResourceRequest) -> Outcome:
        return Outcome(str(uuid.uuid4()))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return Outcome(str(r.physical_id))

    async def delete(self, r: ResourceRequest) -> None:
        return None


HANDLERS: tuple[type[Handler], ...] = (CdkMetadata,)
