"""`AWS::CloudFormation::Stack`: a nested stack, made through the CloudFormation API itself."""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.aws.errors import AwsError
from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceFailed,
    ResourceRequest,
    generated_name,
    wait_until,
)

_FAILED = ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
           "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_FAILED")


def _parameters(props: dict[str, Any]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v if isinstance(v, str) else ",".join(map(str, v))
             if isinstance(v, list) else str(v)} for k, v in (props.get("Parameters") or {}).items()]


class Stack(Handler):
    type = "AWS::CloudFormation::Stack"
    attributes = ()  # `Outputs.<name>`: any output of the nested stack (checked when it is read)

    async def create(self, r: ResourceRequest) -> Outcome:
        name = generated_name(r.stack_name, r.logical_id, 128)
        out = await r.client("cloudformation", "CreateStack", {
            "StackName": name, "TemplateURL": r.properties["TemplateURL"], "Parameters": _parameters(r.properties),
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            "TimeoutInMinutes": r.properties.get("TimeoutInMinutes"), "Tags": r.properties.get("Tags")})
        return await self._settle(r, out["StackId"], "CREATE_COMPLETE")

    async def _settle(self, r: ResourceRequest, stack_id: str, wanted: str) -> Outcome:
        stack: dict[str, Any] = {}

        async def done() -> bool:
            nonlocal stack
            stack = (await r.client("cloudformation", "DescribeStacks", {"StackName": stack_id}))["Stacks"][0]
            if stack["StackStatus"] in _FAILED:
                raise ResourceFailed(f"Embedded stack {stack_id} was not successfully created: "
                                     f"{stack.get('StackStatusReason', stack['StackStatus'])}")
            return bool(stack["StackStatus"] == wanted)

        await wait_until(done, 3600, f"nested stack {stack_id}")
        outputs = {f"Outputs.{o['OutputKey']}": o["OutputValue"] for o in stack.get("Outputs") or []}
        return Outcome(stack_id, outputs)

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        stack_id = str(r.physical_id)
        try:
            await r.client("cloudformation", "UpdateStack", {
                "StackName": stack_id, "TemplateURL": r.properties["TemplateURL"],
                "Parameters": _parameters(r.properties),
                "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]})
        except AwsError as err:
            if err.message != "No updates are to be performed.":
                raise
            return await self._settle(r, stack_id, _status(await self._describe(r, stack_id)))
        return await self._settle(r, stack_id, "UPDATE_COMPLETE")

    async def _describe(self, r: ResourceRequest, stack_id: str) -> dict[str, Any]:
        return dict((await r.client("cloudformation", "DescribeStacks", {"StackName": stack_id}))["Stacks"][0])

    async def delete(self, r: ResourceRequest) -> None:
        stack_id = str(r.physical_id)
        await r.client("cloudformation", "DeleteStack", {"StackName": stack_id})
        while (await self._describe(r, stack_id))["StackStatus"] not in ("DELETE_COMPLETE", "DELETE_FAILED"):
            await asyncio.sleep(0.1)


def _status(stack: dict[str, Any]) -> str:
    return str(stack["StackStatus"])


HANDLERS: tuple[type[Handler], ...] = (Stack,)
