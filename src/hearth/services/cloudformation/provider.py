"""The CloudFormation API (boto3's `cloudformation` client, query protocol): one method per operation.

It owns the API's rules — stack names and ids, which operation is allowed in which stack status,
change sets and their Changes, capabilities, template sources (bodies and URLs on Hearth's S3), and
CloudFormation's ValidationError texts — and renders stacks, resources and events. Operations that
change resources answer at once and run in the background (`engine.StackEngine`), as CloudFormation
does; callers poll DescribeStacks and DescribeStackEvents. It never creates a resource itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from hearth.aws.context import Principal, RequestContext
from hearth.aws.errors import AwsError
from hearth.services.cloudformation import intrinsics, template
from hearth.services.cloudformation.engine import NO_UPDATES, StackEngine
from hearth.services.cloudformation.intrinsics import NotReady
from hearth.services.cloudformation.operator import operator_for
from hearth.services.cloudformation.prepare import (
    INCLUDE,
    IncludeFailed,
    Prepared,
    include_locations,
    plain_refs,
    prepare,
)
from hearth.services.cloudformation.resources import REGISTRY
from hearth.services.cloudformation.stacks import StackRecord, StackStore
from hearth.services.cloudformation.template import ParameterError, TemplateError

FetchObject = Callable[[str, str, str, str], Awaitable[bytes | None]]  # (account, region, bucket, key)

EMPTY_CHANGE_SET = ("The submitted information didn't contain changes. Submit different information to create a "
                    "change set.")
# The properties that identify a resource of a type for a resource import (GetTemplateSummary's
# ResourceIdentifierSummaries); a type not listed here is named without identifiers.
IMPORT_IDENTIFIERS = {
    "AWS::SSM::Parameter": ("Name",), "AWS::S3::Bucket": ("BucketName",), "AWS::DynamoDB::Table": ("TableName",),
    "AWS::Lambda::Function": ("FunctionName",), "AWS::IAM::Role": ("RoleName",),
    "AWS::Logs::LogGroup": ("LogGroupName",), "AWS::SQS::Queue": ("QueueUrl",),
}
_TERMINAL_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "ROLLBACK_COMPLETE",
                "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE")


def _validation(message: str) -> AwsError:
    return AwsError("ValidationError", message, 400)


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


class CloudFormationProvider:
    def __init__(self, store: StackStore, engine: StackEngine, fetch_object: FetchObject) -> None:
        self.store = store
        self.engine = engine
        self._fetch_object = fetch_object

    # -- helpers ----------------------------------------------------------------------------------------

    def _stack(self, ctx: RequestContext, name: str, *, text: str = "id") -> StackRecord:
        stack = self.store.stack(ctx.account_id, ctx.region, name)
        if stack is None:
            raise _validation(f"Stack with id {name} does not exist" if text == "id"
                              else f"Stack [{name}] does not exist")
        return stack

    async def _body(self, ctx: RequestContext, params: dict[str, Any], *, previous: StackRecord | None = None) -> str:
        body, url = params.get("TemplateBody"), params.get("TemplateURL")
        if params.get("UsePreviousTemplate"):
            if previous is None or "TemplateBody" not in previous.doc:
                raise _validation("UsePreviousTemplate is only allowed for an existing stack with a template")
            return str(previous.doc["TemplateBody"])
        if body is not None and url is not None:
            raise _validation("You cannot specify both TemplateURL and TemplateBody")
        if body is not None:
            return str(body)
        if url is None:
            raise _validation("Either Template URL or Template Body must be specified.")
        return await self.fetch_template(ctx.account_id, ctx.region, str(url))

    async def fetch_template(self, account: str, region: str, url: str) -> str:
        bucket, key = s3_location(url)
        data = await self._fetch_object(account, region, bucket, key)
        if data is None:
            raise _validation(f"S3 error: Access Denied\nFor more information check "
                              f"http://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html ({url})")
        return data.decode("utf-8")

    async def _snippets(self, ctx: RequestContext, locations: list[str]) -> dict[str, Any]:
        """AWS::Include's snippets from Hearth's S3, parsed (or why not, for the change set's reason)."""
        out: dict[str, Any] = {}
        for location in dict.fromkeys(locations):
            parsed = urlparse(location)
            if parsed.scheme != "s3" or not parsed.hostname:
                out[location] = IncludeFailed(f"{location} is not an S3 URI.")
                continue
            data = await self._fetch_object(ctx.account_id, ctx.region, parsed.hostname, parsed.path.lstrip("/"))
            if data is None:
                out[location] = IncludeFailed(f"S3 bucket [{parsed.hostname}] does not exist.")
                continue
            try:
                out[location] = template.parse_snippet(data.decode("utf-8"))
            except (TemplateError, UnicodeDecodeError):
                out[location] = IncludeFailed(f"the snippet at {location} is not well-formed YAML or JSON.")
        return out

    async def _prepare(self, ctx: RequestContext, body: str, params: dict[str, Any], name: str, stack_id: str,
                       previous: StackRecord | None) -> Prepared:
        given: dict[str, str] = {}
        use_previous: set[str] = set()
        for p in params.get("Parameters") or []:
            if p.get("UsePreviousValue"):
                use_previous.add(p["ParameterKey"])
            elif "ParameterValue" in p:
                given[p["ParameterKey"]] = str(p["ParameterValue"])
        old_values = dict((previous.doc.get("RawParameters") or {}) if previous else {})
        common: dict[str, Any] = dict(account=ctx.account_id, region=ctx.region, stack_name=name, stack_id=stack_id,
                                      lookup=self.engine.lookup, use_previous=frozenset(use_previous))
        snippets = None
        if INCLUDE in body:
            snippets = await self._snippets(ctx, include_locations(body, given, old_values, **common))
        return prepare(body, given, old_values, snippets=snippets, **common)

    @staticmethod
    def _check_capabilities(prepared: Prepared, given: list[str], *, change_set: bool = False) -> None:
        """AWS's capability rule; a change set may expand macros without CAPABILITY_AUTO_EXPAND (documented)."""
        missing = [c for c in prepared.capabilities_needed if c not in given and not (
            c == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in given) and not (
            change_set and c == "CAPABILITY_AUTO_EXPAND")]
        if missing:
            raise AwsError("InsufficientCapabilitiesException", f"Requires capabilities : [{missing[0]}]", 400)

    def _new_stack(self, ctx: RequestContext, name: str, params: dict[str, Any], status: str) -> StackRecord:
        stack_id = f"arn:aws:cloudformation:{ctx.region}:{ctx.account_id}:stack/{name}/{uuid.uuid4()}"
        now = self.engine._clock()
        doc = {"StackName": name, "StackId": stack_id, "CreationTime": now, "StackStatus": status,
               "Description": None, "Capabilities": params.get("Capabilities") or [],
               "NotificationARNs": params.get("NotificationARNs") or [], "Tags": params.get("Tags") or [],
               "DisableRollback": bool(params.get("DisableRollback", False)) or params.get("OnFailure") == "DO_NOTHING",
               "OnFailure": params.get("OnFailure"),
               "EnableTerminationProtection": bool(params.get("EnableTerminationProtection", False)),
               "RoleARN": params.get("RoleARN"), "TimeoutInMinutes": params.get("TimeoutInMinutes")}
        if params.get("StackPolicyBody"):
            doc["StackPolicyBody"] = params["StackPolicyBody"]
        return StackRecord(stack_id, ctx.account_id, ctx.region, name, status, now, False, doc)

    def _remember(self, stack: StackRecord, prepared: Prepared, params: dict[str, Any]) -> None:
        stack.doc["Description"] = prepared.template.get("Description")
        stack.doc["RawParameters"] = {p["ParameterKey"]: _raw(p) for p in prepared.parameter_records}
        stack.doc["Capabilities"] = params.get("Capabilities") or stack.doc.get("Capabilities") or []
        if params.get("Tags") is not None:
            stack.doc["Tags"] = params["Tags"]

    def _run_deploy(self, stack: StackRecord, prepared: Prepared, operator: Principal | None, *,
                    creating: bool, change_set: dict[str, Any] | None = None) -> None:
        rollback = not stack.doc.get("DisableRollback")
        on_failure = stack.doc.get("OnFailure")

        async def work() -> None:
            try:
                await self.engine.deploy(stack, prepared, creating=creating, rollback=rollback)
            finally:
                if change_set is not None:  # the executed change set stays, with how its execution ended
                    done = stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
                    change_set["ExecutionStatus"] = "EXECUTE_COMPLETE" if done else "EXECUTE_FAILED"
                    self.store.save_change_set(change_set["ChangeSetId"], stack.stack_id,
                                               change_set["ChangeSetName"], change_set)
            if creating and on_failure == "DELETE" and stack.status == "ROLLBACK_COMPLETE":
                await self.engine.delete(stack)

        self.engine.start(stack, work, operator)

    def _ensure_idle(self, stack: StackRecord) -> None:
        if self.engine.busy(stack.stack_id) or (stack.status.endswith("_IN_PROGRESS") and \
                stack.status != "REVIEW_IN_PROGRESS"):
            raise _validation(f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")

    # -- stacks -----------------------------------------------------------------------------------------

    async def create_stack(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["StackName"])
        if self.store.stack(ctx.account_id, ctx.region, name) is not None:
            raise AwsError("AlreadyExistsException", f"Stack [{name}] already exists", 400)
        if params.get("OnFailure") and params.get("DisableRollback") is not None:
            raise _validation("You cannot specify both OnFailure and DisableRollback")
        body = await self._body(ctx, params)
        stack = self._new_stack(ctx, name, params, "CREATE_IN_PROGRESS")
        prepared = await self._prepare(ctx, body, params, name, stack.stack_id, None)
        self._check_capabilities(prepared, params.get("Capabilities") or [])
        self._remember(stack, prepared, params)
        stack.doc["TemplateBody"] = body
        stack.doc["Parameters"] = prepared.parameter_records
        operator = await operator_for(self.engine.call, ctx, stack.doc.get("RoleARN"))
        self.store.save_stack(stack)
        self._run_deploy(stack, prepared, operator, creating=True)
        return {"StackId": stack.stack_id}

    async def update_stack(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        self._ensure_idle(stack)
        if stack.status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED",
                            "REVIEW_IN_PROGRESS"):
            raise _validation(f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
        body = await self._body(ctx, params, previous=stack)
        prepared = await self._prepare(ctx, body, params, stack.name, stack.stack_id, stack)
        self._check_capabilities(prepared, params.get("Capabilities") or [])
        # A template with macros is always updated, changed or not (AWS cannot tell before it runs them).
        if not self._changes(stack, prepared) and self._same_settings(stack, prepared, params) \
                and not template.transforms(template.parse(body)):
            raise _validation(NO_UPDATES)
        operator = await operator_for(self.engine.call, ctx, params.get("RoleARN") or stack.doc.get("RoleARN"))
        if params.get("RoleARN"):
            stack.doc["RoleARN"] = params["RoleARN"]  # AWS keeps the role for the stack's later operations
        self._remember(stack, prepared, params)
        stack.doc["Updated"] = True
        self.store.save_stack(stack)
        self._run_deploy(stack, prepared, operator, creating=False)
        return {"StackId": stack.stack_id}

    def _same_settings(self, stack: StackRecord, prepared: Prepared, params: dict[str, Any]) -> bool:
        outputs_before = (json.loads((stack.doc.get("ProcessedTemplate") and json.dumps(
            stack.doc["ProcessedTemplate"].get("Outputs"))) or "null"))
        same_outputs = outputs_before == prepared.template.get("Outputs")
        same_tags = params.get("Tags") is None or params.get("Tags") == stack.doc.get("Tags")
        return same_outputs and same_tags and _attributes(stack.doc.get("ProcessedTemplate")) == _attributes(
            prepared.template)

    async def delete_stack(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self.store.stack(ctx.account_id, ctx.region, str(params["StackName"]))
        if stack is None or stack.deleted:
            return {}  # AWS answers success for a stack that does not exist
        if stack.doc.get("EnableTerminationProtection"):
            raise _validation(f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")
        if self.engine.busy(stack.stack_id):
            if stack.status == "DELETE_IN_PROGRESS":
                return {}
            await self.engine.wait(stack.stack_id)
        retain = frozenset(params.get("RetainResources") or [])
        operator = await operator_for(self.engine.call, ctx, params.get("RoleARN") or stack.doc.get("RoleARN"))
        if stack.status == "REVIEW_IN_PROGRESS" and not self.store.resources(stack.stack_id):
            self.store.drop_change_sets(stack.stack_id)
        self.engine.start(stack, lambda: self.engine.delete(stack, retain), operator)
        return {}

    def describe_stacks(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("StackName")
        if name:
            stacks = [self._stack(ctx, str(name))]
        else:
            stacks = self.store.stacks(ctx.account_id, ctx.region, include_deleted=False)
        return {"Stacks": [self._render_stack(s) for s in stacks]}

    def _render_stack(self, s: StackRecord) -> dict[str, Any]:
        d = s.doc
        out: dict[str, Any] = {
            "StackId": s.stack_id, "StackName": s.name, "CreationTime": _time(s.created_at),
            "StackStatus": s.status, "DisableRollback": bool(d.get("DisableRollback")),
            "NotificationARNs": d.get("NotificationARNs") or [], "Tags": d.get("Tags") or [],
            "EnableTerminationProtection": bool(d.get("EnableTerminationProtection")),
            "RollbackConfiguration": {}, "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"},
        }
        if d.get("Capabilities"):  # AWS leaves out an empty list
            out["Capabilities"] = d["Capabilities"]
        if d.get("Parameters"):
            out["Parameters"] = [{k: v for k, v in p.items()} for p in d["Parameters"]]
        if d.get("Description"):
            out["Description"] = d["Description"]
        if d.get("StackStatusReason"):
            out["StackStatusReason"] = d["StackStatusReason"]
        if _shows_last_update(s):
            out["LastUpdatedTime"] = _time(d["LastUpdatedTime"])
        if d.get("DeletionTime"):
            out["DeletionTime"] = _time(d["DeletionTime"])
        if d.get("Outputs") and s.status in (*_TERMINAL_OK, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"):
            out["Outputs"] = d["Outputs"]
        if d.get("RoleARN"):
            out["RoleARN"] = d["RoleARN"]
        if d.get("TimeoutInMinutes"):
            out["TimeoutInMinutes"] = d["TimeoutInMinutes"]
        if d.get("ChangeSetId") and not s.status.startswith("ROLLBACK_"):  # not after a failed creation, as AWS
            out["ChangeSetId"] = d["ChangeSetId"]
        return out

    def list_stacks(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        wanted = set(params.get("StackStatusFilter") or [])
        summaries = []
        for s in self.store.stacks(ctx.account_id, ctx.region, include_deleted=True):
            if wanted and s.status not in wanted:
                continue
            item: dict[str, Any] = {"StackId": s.stack_id, "StackName": s.name, "CreationTime": _time(s.created_at),
                                    "StackStatus": s.status, "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"}}
            if s.doc.get("Description"):
                item["TemplateDescription"] = s.doc["Description"]
            if s.doc.get("StackStatusReason"):
                item["StackStatusReason"] = s.doc["StackStatusReason"]
            if s.doc.get("DeletionTime"):
                item["DeletionTime"] = _time(s.doc["DeletionTime"])
            if _shows_last_update(s):
                item["LastUpdatedTime"] = _time(s.doc["LastUpdatedTime"])
            summaries.append(item)
        return {"StackSummaries": summaries}

    def describe_stack_events(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]), text="name")
        events = []
        for e in self.store.events(stack.stack_id):
            item = dict(e)
            item["Timestamp"] = _time(e["Timestamp"])
            if isinstance(item.get("ResourceProperties"), (dict, list)):
                item["ResourceProperties"] = json.dumps(item["ResourceProperties"])
            events.append(item)
        return {"StackEvents": events}

    def _resource_items(self, stack: StackRecord) -> list[tuple[str, dict[str, Any]]]:
        return [(k, r.doc) for k, r in self.store.resources(stack.stack_id).items()]

    def _status_of(self, stack: StackRecord, logical: str) -> tuple[str, str | None]:
        for e in self.store.events(stack.stack_id):
            if e["LogicalResourceId"] == logical and e["ResourceType"] != "AWS::CloudFormation::Stack":
                return e["ResourceStatus"], e.get("ResourceStatusReason")
        return "CREATE_COMPLETE", None

    def describe_stack_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        given = str(params["StackName"])
        stack = self.store.stack(ctx.account_id, ctx.region, given)
        if stack is None:
            raise _validation(f"Stack '{given}' does not exist")
        logical = str(params["LogicalResourceId"])
        resources = self.store.resources(stack.stack_id)
        if logical not in resources:  # AWS names the stack as the request did (name or id)
            raise _validation(f"Resource {logical} does not exist for stack {given}")
        doc = resources[logical].doc
        status, reason = self._status_of(stack, logical)
        out = {"StackName": stack.name, "StackId": stack.stack_id, "LogicalResourceId": logical,
               "PhysicalResourceId": doc.get("PhysicalResourceId"), "ResourceType": doc["Type"],
               "LastUpdatedTimestamp": _time(doc.get("LastUpdated")), "ResourceStatus": status,
               "Metadata": json.dumps(doc.get("Metadata") or {}),
               "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
        if reason:
            out["ResourceStatusReason"] = reason
        return {"StackResourceDetail": out}

    def describe_stack_resources(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("StackName")
        physical = params.get("PhysicalResourceId")
        if name is None and physical is None:
            raise _validation("Either StackName or PhysicalResourceId must be specified.")
        stacks = [self._stack(ctx, str(name))] if name else self.store.stacks(ctx.account_id, ctx.region,
                                                                              include_deleted=False)
        out = []
        for stack in stacks:
            for logical, doc in self._resource_items(stack):
                if physical is not None and doc.get("PhysicalResourceId") != physical:
                    continue
                if params.get("LogicalResourceId") and logical != params["LogicalResourceId"]:
                    continue
                status, reason = self._status_of(stack, logical)
                item = {"StackName": stack.name, "StackId": stack.stack_id, "LogicalResourceId": logical,
                        "PhysicalResourceId": doc.get("PhysicalResourceId"), "ResourceType": doc["Type"],
                        "Timestamp": _time(doc.get("LastUpdated")), "ResourceStatus": status,
                        "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
                if reason:
                    item["ResourceStatusReason"] = reason
                out.append(item)
        return {"StackResources": out}

    def list_stack_resources(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        out = []
        for logical, doc in self._resource_items(stack):
            status, reason = self._status_of(stack, logical)
            item = {"LogicalResourceId": logical, "PhysicalResourceId": doc.get("PhysicalResourceId"),
                    "ResourceType": doc["Type"], "LastUpdatedTimestamp": _time(doc.get("LastUpdated")),
                    "ResourceStatus": status, "DriftInformation": {"StackResourceDriftStatus": "NOT_CHECKED"}}
            if reason:
                item["ResourceStatusReason"] = reason
            out.append(item)
        return {"StackResourceSummaries": out}

    # -- templates --------------------------------------------------------------------------------------

    def get_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        change_set = params.get("ChangeSetName")
        if change_set:
            if not str(change_set).startswith("arn:") and not params.get("StackName"):
                raise _validation("StackName is a required parameter.")
            _, doc = self._change_set(ctx, str(change_set), params.get("StackName"))
            body, processed = doc["TemplateBody"], doc.get("ProcessedTemplate")
        else:
            if not params.get("StackName"):
                raise _validation("StackName is required if ChangeSetName is not specified.")
            stack = self._stack(ctx, str(params["StackName"]))
            body, processed = stack.doc.get("TemplateBody", "{}"), stack.doc.get("ProcessedTemplate")
        stages = ["Original", "Processed"] if processed is not None else ["Original"]
        # Without macros the processed template is the original, in its own format (YAML stays YAML).
        if params.get("TemplateStage") == "Processed" and processed is not None \
                and template.transforms(template.parse(body)):
            return {"TemplateBody": json.dumps(processed), "StagesAvailable": stages}
        return {"TemplateBody": body, "StagesAvailable": stages}

    async def get_template_summary(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("StackName"):
            stack = self._stack(ctx, str(params["StackName"]))
            if stack.status == "REVIEW_IN_PROGRESS":
                raise _validation("GetTemplateSummary cannot be called on REVIEW_IN_PROGRESS stacks.")
            body = str(stack.doc.get("TemplateBody", "{}"))
        else:
            body = await self._body(ctx, params)
        parsed = template.parse(body)
        resources = parsed.get("Resources")
        if not isinstance(resources, dict) or not resources:
            raise TemplateError("Template format error: At least one Resources member must be defined.")
        out = self._parameter_summary(parsed, with_type=True)
        declared = template.transforms(parsed)
        types = sorted({str(r.get("Type")) for r in resources.values() if isinstance(r, dict)})
        out["ResourceTypes"] = types
        out["Version"] = parsed.get("AWSTemplateFormatVersion", "2010-09-09")
        if declared:
            out["DeclaredTransforms"] = declared
        if parsed.get("Metadata") is not None:
            out["Metadata"] = json.dumps(parsed["Metadata"])
        summaries = []
        for kind in types:
            item: dict[str, Any] = {"ResourceType": kind, "LogicalResourceIds": [
                k for k, r in resources.items() if isinstance(r, dict) and r.get("Type") == kind]}
            if kind in IMPORT_IDENTIFIERS:
                item["ResourceIdentifiers"] = list(IMPORT_IDENTIFIERS[kind])
            summaries.append(item)
        out["ResourceIdentifierSummaries"] = summaries
        return out

    async def validate_template(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        body = await self._body(ctx, params)
        parsed = template.parse(body)
        if not template.transforms(parsed):
            template.check_structure(parsed)
            names = frozenset(parsed.get("Resources") or {})
            known = names | set(parsed.get("Parameters") or {}) | set(intrinsics.PSEUDO)
            for resource in parsed["Resources"].values():
                missing = sorted(n for n in plain_refs(resource.get("Properties")) if n not in known)
                if missing:
                    raise TemplateError(f"Template format error: Unresolved resource dependencies "
                                        f"[{', '.join(missing)}] in the Resources block of the template")
        out = self._parameter_summary(parsed, with_type=False)
        if template.transforms(parsed):  # AWS leaves out an empty list
            out["DeclaredTransforms"] = template.transforms(parsed)
        return out

    @staticmethod
    def _parameter_summary(parsed: dict[str, Any], *, with_type: bool) -> dict[str, Any]:
        parameters = []
        for key, spec in (parsed.get("Parameters") or {}).items():
            item: dict[str, Any] = {"ParameterKey": key, "NoEcho": str(spec.get("NoEcho", "false")).lower() == "true"}
            if "Default" in spec:
                item["DefaultValue"] = str(spec["Default"])
            if spec.get("Description"):
                item["Description"] = spec["Description"]
            if with_type:
                item["ParameterType"] = spec.get("Type")
                item["ParameterConstraints"] = ({"AllowedValues": [str(v) for v in spec["AllowedValues"]]}
                                                if "AllowedValues" in spec else {})
            parameters.append(item)
        out: dict[str, Any] = {"Parameters": parameters}
        if parsed.get("Description"):
            out["Description"] = parsed["Description"]
        resources = parsed.get("Resources") or {}
        iam = [k for k, r in resources.items()
               if isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::IAM::")]
        if iam:
            named = any((resources[k].get("Properties") or {}).get(p) for k in iam
                        for p in ("RoleName", "UserName", "GroupName", "ManagedPolicyName"))
            out["Capabilities"] = ["CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"]
            kinds = ", ".join(sorted({str(resources[k]["Type"]) for k in iam}))
            out["CapabilitiesReason"] = f"The following resource(s) require capabilities: [{kinds}]"
        elif template.transforms(parsed):
            out["Capabilities"] = ["CAPABILITY_AUTO_EXPAND"]
            out["CapabilitiesReason"] = "The following resource(s) require capabilities: [AWS::Serverless-2016-10-31]"
        return out

    # -- change sets ------------------------------------------------------------------------------------

    def _change_set(self, ctx: RequestContext, name: str, stack_name: str | None) -> tuple[str, dict[str, Any]]:
        if name.startswith("arn:"):
            found = self.store.change_set(name)
            if found is None:
                raise AwsError("ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
            return found
        if not stack_name:
            raise _validation("StackName must be specified if ChangeSetName is not specified as an ARN.")
        stack = self.store.stack(ctx.account_id, ctx.region, stack_name)
        if stack is None:
            raise _validation(f"Stack [{stack_name}] does not exist")
        by_name = self.store.change_set_by_name(stack.stack_id, name)
        if by_name is None:
            raise AwsError("ChangeSetNotFound", f"ChangeSet [{name}] does not exist", 404)
        return by_name[1]["StackId"], by_name[1]

    async def create_change_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["StackName"])
        cs_name = str(params["ChangeSetName"])
        kind = params.get("ChangeSetType", "UPDATE")
        stack = self.store.stack(ctx.account_id, ctx.region, name)
        new_stack = False
        if kind == "CREATE":
            if stack is not None and stack.status != "REVIEW_IN_PROGRESS":
                raise _validation(f"Stack [{name}] already exists and cannot be created again with the "
                                  f"changeSet [{cs_name}].")
            if stack is None:
                # Tags and capabilities are the stack's from the execution on; until then it has none. It is
                # saved once the request's parameters are known to fit.
                stack = self._new_stack(ctx, name, {"StackName": name}, "REVIEW_IN_PROGRESS")
                stack.doc["StackStatusReason"] = "User Initiated"
                new_stack = True
        elif kind == "UPDATE":
            if stack is None:
                raise _validation(f"Stack [{name}] does not exist")
            if stack.status == "REVIEW_IN_PROGRESS":
                raise _validation(f"Stack [{name}] does not exist")
        else:
            raise _validation(f"ChangeSetType {kind} is not supported by Hearth")
        same_name = self.store.change_set_by_name(stack.stack_id, cs_name)
        if same_name is not None:
            if not str(same_name[1].get("ExecutionStatus", "")).startswith("EXECUTE_"):
                raise AwsError("AlreadyExistsException", f"ChangeSet {cs_name} cannot be created due to a mismatch "
                                                         "with existing attribute Template", 400)
            self.store.drop_change_set(same_name[0])  # an executed change set's name is free again
        body = await self._body(ctx, params, previous=stack)
        # A body that cannot be read, a format error in a template without macros and parameter values that
        # do not fit are refused at once, as AWS does; other errors (a macro's) fail the change set.
        macros = bool(template.transforms(template.parse(body))) or "Fn::Transform" in body
        prepared: Prepared | None = None
        failure: AwsError | None = None
        try:
            prepared = await self._prepare(ctx, body, params, stack.name, stack.stack_id,
                                     stack if kind == "UPDATE" else None)
        except ParameterError:
            raise
        except TemplateError as err:
            if not macros and err.message.startswith("Template format error"):
                raise
            failure = err
        except AwsError as err:
            failure = err
        if new_stack:
            self.store.save_stack(stack)
            self.engine.event(stack, name, stack.stack_id, "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS",
                              "User Initiated")
        change_set_id = f"arn:aws:cloudformation:{ctx.region}:{ctx.account_id}:changeSet/{cs_name}/{uuid.uuid4()}"
        doc: dict[str, Any] = {
            "ChangeSetName": cs_name, "ChangeSetId": change_set_id, "StackId": stack.stack_id, "StackName": stack.name,
            "Description": params.get("Description"), "CreationTime": self.engine._clock(),
            "ExecutionStatus": "UNAVAILABLE", "Status": "CREATE_PENDING", "ChangeSetType": kind,
            "Capabilities": params.get("Capabilities") or [], "Tags": params.get("Tags"),
            "NotificationARNs": params.get("NotificationARNs") or [], "TemplateBody": body,
            "RequestParameters": params.get("Parameters") or [], "Changes": [], "RoleARN": params.get("RoleARN")}
        try:
            if failure is not None:
                raise failure
            assert prepared is not None
            self._check_capabilities(prepared, params.get("Capabilities") or [], change_set=True)
            changes = self._changes(stack, prepared) if kind == "UPDATE" else self._changes(None, prepared)
            doc["Parameters"] = prepared.parameter_records
            doc["ProcessedTemplate"] = prepared.template
            doc["Changes"] = changes
            # A CREATE change set may make a stack without resources (every Condition false), as in AWS.
            if not changes and kind == "UPDATE" and self._same_settings(stack, prepared, params):
                doc.update(Status="FAILED", StatusReason=EMPTY_CHANGE_SET)
            else:
                doc.update(Status="CREATE_COMPLETE", ExecutionStatus="AVAILABLE")
        except AwsError as err:
            doc.update(Status="FAILED", StatusReason=err.message)
        self.store.save_change_set(change_set_id, stack.stack_id, cs_name, doc)
        return {"Id": change_set_id, "StackId": stack.stack_id}

    def _changes(self, stack: StackRecord | None, prepared: Prepared) -> list[dict[str, Any]]:
        existing = {k: r.doc for k, r in self.store.resources(stack.stack_id).items()} if stack else {}
        resources = prepared.template["Resources"]
        changes: list[dict[str, Any]] = []
        scope = self.engine._scope(stack, prepared, existing) if stack else None
        for logical in prepared.active:
            kind = str(resources[logical]["Type"])
            old = existing.get(logical)
            if old is None:
                changes.append(_change("Add", logical, kind))
                continue
            replacement = "False"
            try:
                assert scope is not None
                props = intrinsics.evaluate(resources[logical].get("Properties") or {}, scope)
            except (NotReady, TemplateError):
                props = None
            if props == old.get("Properties") and old.get("Type") == kind:
                continue
            handler = REGISTRY.get(kind)
            if old.get("Type") != kind or (handler is not None and not handler.updatable):
                replacement = "True"
            elif props is None:
                replacement = "Conditional"
            elif handler is not None and any(props.get(p) != (old.get("Properties") or {}).get(p)
                                             for p in handler.replace_on):
                replacement = "True"
            changes.append(_change("Modify", logical, kind, old.get("PhysicalResourceId"), replacement))
        for logical, old in existing.items():
            if logical not in prepared.active:
                changes.append(_change("Remove", logical, old["Type"], old.get("PhysicalResourceId")))
        return changes

    def describe_change_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        _, doc = self._change_set(ctx, str(params["ChangeSetName"]), params.get("StackName"))
        out = {k: v for k, v in doc.items() if k not in ("TemplateBody", "ProcessedTemplate", "RequestParameters",
                                                         "ChangeSetType") and v is not None}
        out["CreationTime"] = _time(doc["CreationTime"])
        if not out.get("Parameters"):  # AWS leaves out an empty list
            out.pop("Parameters", None)
        out.setdefault("NotificationARNs", [])
        out["RollbackConfiguration"] = {}
        out["IncludeNestedStacks"] = False
        return out

    async def execute_change_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack_id, doc = self._change_set(ctx, str(params["ChangeSetName"]), params.get("StackName"))
        if doc["ExecutionStatus"] != "AVAILABLE":
            raise AwsError("InvalidChangeSetStatus", f"ChangeSet [{doc['ChangeSetId']}] cannot be executed in its "
                                                     f"current status of [{doc['Status']}]", 400)
        stack = self.store.stack(ctx.account_id, ctx.region, stack_id)
        if stack is None or stack.deleted:
            raise _validation(f"Stack [{doc['StackName']}] does not exist")
        self._ensure_idle(stack)
        request = {"Parameters": doc.get("RequestParameters"), "Capabilities": doc.get("Capabilities"),
                   "Tags": doc.get("Tags")}
        creating = doc["ChangeSetType"] == "CREATE"
        prepared = await self._prepare(ctx, doc["TemplateBody"], request, stack.name, stack.stack_id,
                                 None if creating else stack)
        role_arn = doc.get("RoleARN") or stack.doc.get("RoleARN")
        operator = await operator_for(self.engine.call, ctx, role_arn)
        stack.doc["RoleARN"] = role_arn
        if doc.get("NotificationARNs"):
            stack.doc["NotificationARNs"] = doc["NotificationARNs"]
        if params.get("DisableRollback") is not None:
            stack.doc["DisableRollback"] = bool(params["DisableRollback"])
        self._remember(stack, prepared, request)
        stack.doc["ChangeSetId"] = doc["ChangeSetId"]
        if creating:  # a stack whose creation fails keeps the template it was made from
            stack.doc["TemplateBody"] = doc["TemplateBody"]
        stack.doc["Updated"] = True  # a stack made by a change set shows LastUpdatedTime from its execution on
        stack.doc["Parameters"] = prepared.parameter_records
        self.store.save_stack(stack)
        # Executing one deletes the stack's other change sets; the executed one stays (DescribeChangeSet
        # answers EXECUTE_IN_PROGRESS, then EXECUTE_COMPLETE or EXECUTE_FAILED), as in AWS.
        for other in self.store.change_sets(stack.stack_id):
            if other["ChangeSetId"] != doc["ChangeSetId"]:
                self.store.drop_change_set(other["ChangeSetId"])
        doc.update(ExecutionStatus="EXECUTE_IN_PROGRESS")
        self.store.save_change_set(doc["ChangeSetId"], stack.stack_id, doc["ChangeSetName"], doc)
        self._run_deploy(stack, prepared, operator, creating=creating, change_set=doc)
        return {}

    def delete_change_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, stack_name = str(params["ChangeSetName"]), params.get("StackName")
        if not name.startswith("arn:") and stack_name:
            # By name, AWS answers for the stack only: a change set that is not there is already deleted
            # (AWS CDK's deploy deletes `cdk-deploy-change-set` before making it, and relies on this).
            stack = self.store.stack(ctx.account_id, ctx.region, str(stack_name))
            if stack is None:
                raise _validation(f"Stack [{stack_name}] does not exist")
            if self.store.change_set_by_name(stack.stack_id, name) is None:
                return {}
        _, doc = self._change_set(ctx, name, stack_name)
        self.store.drop_change_set(doc["ChangeSetId"])
        return {}

    def list_change_sets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        out = []
        for doc in self.store.change_sets(stack.stack_id):
            item = {k: doc.get(k) for k in ("StackId", "StackName", "ChangeSetId", "ChangeSetName", "ExecutionStatus",
                                            "Status", "StatusReason", "Description") if doc.get(k) is not None}
            item["CreationTime"] = _time(doc["CreationTime"])
            item["IncludeNestedStacks"] = False
            out.append(item)
        return {"Summaries": out}

    # -- exports, policies, protection ------------------------------------------------------------------

    def list_exports(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Exports": [{"ExportingStackId": stack_id, "Name": name, "Value": value}
                            for name, value, stack_id in self.store.exports(ctx.account_id, ctx.region)]}

    def list_imports(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["ExportName"])
        if self.store.export(ctx.account_id, ctx.region, name) is None:
            raise _validation(f"Export '{name}' is not imported by any stack.")
        importers = [s.name for s in self.store.stacks(ctx.account_id, ctx.region, include_deleted=False)
                     if name in _imports(s.doc.get("ProcessedTemplate"))]
        if not importers:
            raise _validation(f"Export '{name}' is not imported by any stack.")
        return {"Imports": importers}

    def update_termination_protection(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        stack.doc["EnableTerminationProtection"] = bool(params["EnableTerminationProtection"])
        self.store.save_stack(stack)
        return {"StackId": stack.stack_id}

    def set_stack_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        body = params.get("StackPolicyBody")
        if body is not None and params.get("StackPolicyURL") is not None:
            raise _validation("You cannot specify both StackPolicyURL and StackPolicyBody")
        if body is not None:
            try:
                document = json.loads(body)
            except ValueError:
                raise _validation("Error validating stack policy: Invalid stack policy") from None
            if not isinstance(document, dict) or "Statement" not in document:
                raise _validation("Error validating stack policy: Invalid stack policy")
        stack.doc["StackPolicyBody"] = body
        self.store.save_stack(stack)
        return {}

    def get_stack_policy(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        stack = self._stack(ctx, str(params["StackName"]))
        body = stack.doc.get("StackPolicyBody")
        return {"StackPolicyBody": body} if body else {}


def _attributes(processed: Any) -> dict[str, Any]:
    """Each resource's attributes other than its properties (DeletionPolicy, UpdateReplacePolicy, Metadata,
    DependsOn…): a change to one alone is an update for AWS, though no resource changes."""
    resources = processed.get("Resources") if isinstance(processed, dict) else None
    return {k: {a: v for a, v in r.items() if a != "Properties"}
            for k, r in (resources or {}).items() if isinstance(r, dict)}


def _shows_last_update(s: StackRecord) -> bool:
    """AWS shows LastUpdatedTime once a stack has been updated or a change set executed on it: never for a
    stack CreateStack made and nothing changed since (even rolled back or deleted)."""
    return bool(s.doc.get("LastUpdatedTime")) and bool(s.doc.get("Updated")) and s.status != "REVIEW_IN_PROGRESS"


def _raw(record: dict[str, Any]) -> str:
    return str(record.get("ParameterValue", ""))


def _change(action: str, logical: str, kind: str, physical: str | None = None,
            replacement: str | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"Action": action, "LogicalResourceId": logical, "ResourceType": kind,
                              "Scope": [], "Details": []}
    if physical:
        change["PhysicalResourceId"] = physical
    if replacement is not None:
        change["Replacement"] = replacement
    if action == "Modify":
        change["Scope"] = ["Properties"]
    return {"Type": "Resource", "ResourceChange": change}


def _imports(processed: Any) -> set[str]:
    found: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if len(v) == 1 and "Fn::ImportValue" in v and isinstance(v["Fn::ImportValue"], str):
                found.add(v["Fn::ImportValue"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(processed)
    return found


def s3_location(url: str) -> tuple[str, str]:
    """(bucket, key) of a template URL in any of S3's forms (path, virtual-hosted, Hearth's endpoint)."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    path = unquote(parsed.path).lstrip("/")
    if parsed.scheme == "s3" and host:
        raise _validation(f"S3 error: Domain name specified in {parsed.hostname} is not a valid S3 domain")
    if parsed.scheme not in ("http", "https") or not host:
        raise _validation("TemplateURL must be a supported URL.")
    marker = next((m for m in (".s3.", ".s3-") if m in host), None)
    if marker is not None and not host.startswith(("s3.", "s3-")):
        return host.split(marker, 1)[0], path
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise _validation("TemplateURL must be a supported URL.")
    return bucket, key
