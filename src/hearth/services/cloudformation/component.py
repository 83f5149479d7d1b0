"""CloudFormation as one component: its store, engine and provider, and how it reaches the other services.

It owns the wiring of the three and the two questions CloudFormation asks of other services outside a
resource handler: the value of an SSM parameter (for `AWS::SSM::Parameter::Value<…>` parameters) and
the bytes of an S3 object (for `TemplateURL`s). Both go through Hearth's own APIs, in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hearth.aws.errors import AwsError
from hearth.aws.gateway import AwsGateway
from hearth.services.cloudformation.engine import StackEngine
from hearth.services.cloudformation.provider import CloudFormationProvider
from hearth.services.cloudformation.resources.base import read_all
from hearth.services.cloudformation.resources.custom import CustomResource, Responses
from hearth.services.cloudformation.stacks import StackStore
from hearth.services.ssm.parameters import ParameterStore

TEMPLATE_LIMIT = 1_000_000  # CloudFormation's limit for a template in S3


class CloudFormation:
    def __init__(self, data_dir: Path, gateway: AwsGateway, parameters: ParameterStore,
                 function_endpoint: Callable[[], str]) -> None:
        """`function_endpoint`: Hearth's API as a function's environment reaches it (custom resources'
        response URLs point there)."""
        self._gateway = gateway
        self._parameters = parameters
        self.store = StackStore(data_dir)
        self.responses = Responses()
        self.engine = StackEngine(self.store, gateway.call, lookup=self._ssm_value,
                                  custom=CustomResource(self.responses, function_endpoint))
        self.provider = CloudFormationProvider(self.store, self.engine, self._s3_object)

    def start(self) -> None:
        self.engine.recover()

    async def close(self) -> None:
        await self.engine.close()
        self.store.close()

    def _ssm_value(self, account: str, region: str, name: str) -> str | None:
        found = self._parameters.latest(account, region, name)
        return found.value if found is not None else None

    async def _s3_object(self, account: str, region: str, bucket: str, key: str) -> bytes | None:
        try:
            out = await self._gateway.call("s3", "GetObject", {"Bucket": bucket, "Key": key}, account_id=account,
                                           region=region, caller="cloudformation")
        except AwsError:
            return None
        body = out.get("Body")
        return None if body is None else await read_all(body, TEMPLATE_LIMIT)

