"""The CloudFormation engine: from a prepared template to resources, and back, one stack operation at
a time.

It owns running an operation (`prepare.py` readies the template): create, update and delete resources
in dependency order (independent ones in parallel), the stack's and resources' status and events,
outputs and exports, rollback on failure (CREATE → ROLLBACK_COMPLETE, UPDATE →
UPDATE_ROLLBACK_COMPLETE), DeletionPolicy and UpdateReplacePolicy. It never speaks the API's wire
format (`provider.py`) and never touches another service's storage: resources are made through
`resources/` handlers, which call Hearth's APIs.

Decision: an operation that was running when the server stopped is not resumed; the stack is marked
failed at start (`*_FAILED`, with a reason saying so), as a CloudFormation operation whose handler
timed out would be.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hearth.aws.context import Principal
from hearth.aws.errors import AwsError
from hearth.services.cloudformation import intrinsics
from hearth.services.cloudformation.intrinsics import NO_VALUE, NotReady, Scope
from hearth.services.cloudformation.prepare import ParameterLookup, Prepared, as_text, pseudo_parameters
from hearth.services.cloudformation.resources import REGISTRY
from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceFailed,
    ResourceRequest,
    ServiceClient,
)
from hearth.services.cloudformation.stacks import StackRecord, StackStore
from hearth.services.cloudformation.template import TemplateError

log = logging.getLogger(__name__)

NO_UPDATES = "No updates are to be performed."

# Resources that CloudFormation itself handles (no service behind them).
_WAIT_CONDITION_TYPES = ("AWS::CloudFormation::WaitConditionHandle",)

CallFn = Callable[..., Awaitable[dict[str, Any]]]


# -- running an operation ----------------------------------------------------------------------------------


class StackEngine:
    """Runs stack operations in the background, one at a time per stack, and records their progress."""

    def __init__(self, store: StackStore, call: CallFn, *, lookup: ParameterLookup,
                 custom: Handler | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._custom = custom  # Lambda-backed custom resources (the cfn-response protocol)
        self.call = call  # Hearth's APIs, in-process (the gateway's `call`)
        self.lookup = lookup
        self._clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._operators: dict[str, Principal | None] = {}  # stack id -> who its running operation acts as

    def recover(self) -> None:
        """Operations cut short by a stop are not resumed: their stacks are marked failed."""
        for stack in self.store.unfinished():
            failed = {"CREATE_IN_PROGRESS": "CREATE_FAILED", "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
                      "DELETE_IN_PROGRESS": "DELETE_FAILED", "REVIEW_IN_PROGRESS": "REVIEW_IN_PROGRESS"}.get(
                stack.status, "UPDATE_ROLLBACK_FAILED")
            if failed != stack.status:
                self._stack_status(stack, failed, "Hearth stopped while this operation was running")

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def busy(self, stack_id: str) -> bool:
        task = self._tasks.get(stack_id)
        return task is not None and not task.done()

    def start(self, stack: StackRecord, work: Callable[[], Awaitable[None]], operator: Principal | None = None,
              ) -> None:
        """Run `work` as the stack's operation; its resources are made as `operator` (`operator.py`)."""
        self._operators[stack.stack_id] = operator

        async def run() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stack operation of %s failed", stack.name)
            finally:
                self._tasks.pop(stack.stack_id, None)
                self._operators.pop(stack.stack_id, None)

        self._tasks[stack.stack_id] = asyncio.get_running_loop().create_task(run())

    async def wait(self, stack_id: str) -> None:
        task = self._tasks.get(stack_id)
        if task is not None:
            await asyncio.shield(task)

    def _handler(self, kind: str) -> Handler | None:
        if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            return self._custom
        return REGISTRY.get(kind)

    # -- events and status ------------------------------------------------------------------------------

    def event(self, stack: StackRecord, logical: str, physical: str, kind: str, status: str,
              reason: str | None = None, properties: Any = None) -> None:
        doc: dict[str, Any] = {
            "StackId": stack.stack_id, "EventId": str(uuid.uuid4()), "StackName": stack.name,
            "LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": kind,
            "Timestamp": self._clock(), "ResourceStatus": status}
        if reason:
            doc["ResourceStatusReason"] = reason
        if properties is not None:
            doc["ResourceProperties"] = properties
        self.store.add_event(stack.stack_id, doc)

    def _stack_status(self, stack: StackRecord, status: str, reason: str | None = None) -> None:
        stack.status = status
        stack.doc["StackStatus"] = status
        if reason:
            stack.doc["StackStatusReason"] = reason
        else:
            stack.doc.pop("StackStatusReason", None)
        stack.doc["LastUpdatedTime"] = self._clock()
        if status == "DELETE_COMPLETE":
            stack.deleted = True
            stack.doc["DeletionTime"] = self._clock()
        elif status == "ROLLBACK_IN_PROGRESS":  # a failed creation's rollback deletes: AWS shows DeletionTime
            stack.doc["DeletionTime"] = self._clock()
        self.store.save_stack(stack)
        self.event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason)

    # -- one operation ----------------------------------------------------------------------------------

    def _client(self, stack: StackRecord) -> ServiceClient:
        return ServiceClient(self.call, stack.account, stack.region, self._operators.get(stack.stack_id))

    def _scope(self, stack: StackRecord, prepared: Prepared, resources: dict[str, dict[str, Any]]) -> Scope:
        processed = prepared.template
        declared = processed["Resources"]

        def ref(name: str) -> Any:
            doc = resources.get(name)
            if doc is None:
                if name in declared:
                    raise NotReady(name)
                raise TemplateError(f"Template format error: Unresolved resource dependencies [{name}] in the "
                                    "Resources block of the template")
            return doc.get("Ref", doc.get("PhysicalResourceId"))

        def get_att(name: str, attribute: str) -> Any:
            doc = resources.get(name)
            if doc is None:
                if name in declared:
                    raise NotReady(name)
                raise TemplateError(f"Template format error: Unresolved resource dependencies [{name}] in the "
                                    "Resources block of the template")
            attrs = doc.get("Attributes") or {}
            if attribute not in attrs:
                raise TemplateError(f"Template error: resource {name} does not support attribute type {attribute} in "
                                    "Fn::GetAtt")
            return attrs[attribute]

        def export(name: str) -> Any:
            found = self.store.export(stack.account, stack.region, name)
            return found[0] if found else None

        scope = Scope(parameters=prepared.parameters,
                      pseudo=pseudo_parameters(stack.account, stack.region, stack.name, stack.stack_id),
                      mappings=processed.get("Mappings") or {},
                      condition_definitions=processed.get("Conditions") or {},
                      ref=ref, get_att=get_att, export=export, resource_names=frozenset(declared))
        return scope

    async def deploy(self, stack: StackRecord, prepared: Prepared, *, creating: bool,
                     rollback: bool = True) -> None:
        """Create the stack's resources, or update them to `prepared`; roll back on failure."""
        in_progress = "CREATE_IN_PROGRESS" if creating else "UPDATE_IN_PROGRESS"
        self._stack_status(stack, in_progress, "User Initiated")
        previous_doc = dict(stack.doc)
        existing = {k: r.doc for k, r in self.store.resources(stack.stack_id).items()}
        done: dict[str, dict[str, Any]] = {k: v for k, v in existing.items() if v.get("Status") != "DELETED"}
        changed: list[str] = []  # created or replaced (for rollback)
        updated: dict[str, dict[str, Any]] = {}  # logical -> previous doc (for rollback)
        replaced: dict[str, dict[str, Any]] = {}  # logical -> the old resource, deleted at cleanup
        failure = await self._apply(stack, prepared, done, changed, updated, replaced, creating=creating)
        if failure is None:
            failure = self._outputs(stack, prepared, done)
        if failure is None:
            if not creating:
                self._stack_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
                keep = set(prepared.active)
                for logical in self._reverse_order({k: v for k, v in existing.items() if k not in keep},
                                                   previous_doc):
                    await self._delete_one(stack, logical, existing[logical])
                for logical, old in replaced.items():
                    await self._delete_one(stack, logical, old, forget=False)
            self._save_template(stack, prepared)
            self._stack_status(stack, "CREATE_COMPLETE" if creating else "UPDATE_COMPLETE")
            return
        if not rollback:
            self._save_template(stack, prepared)
            self._stack_status(stack, "CREATE_FAILED" if creating else "UPDATE_FAILED", failure)
            return
        if creating:
            self._stack_status(stack, "ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to create: "
                                                              f"[{failure}]. Rollback requested by user.")
            for logical in reversed(changed):
                await self._delete_one(stack, logical, done[logical])
            self._stack_status(stack, "ROLLBACK_COMPLETE")
            return
        self._stack_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to update: "
                                                                 f"[{failure}]. ")
        await self._roll_back_update(stack, done, changed, updated, replaced)
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE")

    def _save_template(self, stack: StackRecord, prepared: Prepared) -> None:
        stack.doc["TemplateBody"] = prepared.original
        stack.doc["ProcessedTemplate"] = prepared.template
        stack.doc["Parameters"] = prepared.parameter_records
        stack.doc["ParameterValues"] = {k: v["ParameterValue"] for k, v in
                                        ((p["ParameterKey"], p) for p in prepared.parameter_records)}
        stack.doc["ResolvedParameters"] = prepared.parameters
        self.store.save_stack(stack)

    async def _apply(self, stack: StackRecord, prepared: Prepared, done: dict[str, dict[str, Any]],
                     changed: list[str], updated: dict[str, dict[str, Any]], replaced: dict[str, dict[str, Any]],
                     *, creating: bool) -> str | None:
        """Create or update every active resource in dependency order; the failed logical ids, or None."""
        resources = prepared.template["Resources"]
        graph = {k: prepared.dependencies[k] & set(prepared.active) for k in prepared.active}
        pending = set(prepared.active)
        running: dict[asyncio.Task[None], str] = {}
        failed: list[str] = []
        scope = self._scope(stack, prepared, done)

        async def one(logical: str) -> None:
            try:
                await self._create_or_update(stack, logical, resources[logical], scope, done, changed, updated,
                                             replaced)
            except Exception as exc:  # recorded as the resource's failure
                failed.append(logical)
                if not isinstance(exc, (ResourceFailed, AwsError, TemplateError)):
                    log.exception("resource %s of stack %s", logical, stack.name)

        while pending or running:
            if not failed:
                ready = sorted(k for k in pending if graph[k] <= (set(done) - pending) and not
                               (graph[k] & {running[t] for t in running}))
                for logical in ready:
                    pending.discard(logical)
                    running[asyncio.get_running_loop().create_task(one(logical))] = logical
            elif not running:
                break
            if not running:
                if pending and not failed:  # nothing can start: a dependency never completed
                    failed.extend(sorted(pending))
                break
            finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                running.pop(task)
        if failed:
            for logical in sorted(pending):
                kind = resources[logical].get("Type", "")
                status = "CREATE_FAILED" if logical not in done else "UPDATE_FAILED"
                self.event(stack, logical, "", kind, status, "Resource creation cancelled")
            return ", ".join(failed)
        return None

    async def _create_or_update(self, stack: StackRecord, logical: str, resource: dict[str, Any], scope: Scope,
                                done: dict[str, dict[str, Any]], changed: list[str],
                                updated: dict[str, dict[str, Any]], replaced: dict[str, dict[str, Any]]) -> None:
        kind = str(resource["Type"])
        previous = done.get(logical)
        try:
            props = intrinsics.evaluate(resource.get("Properties") or {}, scope)
        except TemplateError as err:
            status = "CREATE_FAILED" if previous is None else "UPDATE_FAILED"
            self.event(stack, logical, "", kind, status, err.message)
            raise
        if props is NO_VALUE:
            props = {}
        handler = self._handler(kind)
        if previous is not None and previous.get("Type") == kind and previous.get("Properties") == props:
            return  # nothing changed for this resource
        if kind in _WAIT_CONDITION_TYPES:
            physical = f"https://cloudformation-waitcondition-{stack.region}.s3.amazonaws.com/{uuid.uuid4()}"
            self._record(stack, logical, kind, props, resource, Outcome(physical), done)
            self.event(stack, logical, physical, kind, "CREATE_COMPLETE")
            return
        if handler is None:
            status = "CREATE_FAILED" if previous is None else "UPDATE_FAILED"
            reason = f"Resource type {kind} is not supported by Hearth"
            self.event(stack, logical, "", kind, status, reason)
            raise ResourceFailed(reason)
        client = self._client(stack)
        replace = previous is not None and (previous.get("Type") != kind or not handler.updatable or any(
            props.get(p) != (previous.get("Properties") or {}).get(p) for p in handler.replace_on))
        if previous is None or replace:
            status_prefix = "CREATE" if previous is None else "UPDATE"
            self.event(stack, logical, "", kind, f"{status_prefix}_IN_PROGRESS",
                       "Requested update requires the creation of a new physical resource; hence creating one."
                       if replace else None, props)
            request = ResourceRequest(logical, kind, props, stack.name, stack.stack_id, client)
            try:
                outcome = await handler.create(request)
            except (AwsError, ResourceFailed, KeyError, TypeError, ValueError) as exc:
                if request.created is not None:  # made, then a later step failed: leave nothing behind
                    request.physical_id = request.created
                    try:
                        await handler.delete(request)
                    except (AwsError, ResourceFailed, KeyError, TypeError, ValueError):
                        log.warning("could not remove the half-made %s %s", kind, request.created)
                self.event(stack, logical, "", kind, f"{status_prefix}_FAILED", _reason(exc))
                raise ResourceFailed(_reason(exc)) from None
            if replace and previous is not None:
                replaced[logical] = previous
            changed.append(logical)
            self._record(stack, logical, kind, props, resource, outcome, done)
            self.event(stack, logical, outcome.physical_id, kind, f"{status_prefix}_COMPLETE")
            return
        physical = str(previous.get("PhysicalResourceId"))
        self.event(stack, logical, physical, kind, "UPDATE_IN_PROGRESS", None, props)
        request = ResourceRequest(logical, kind, props, stack.name, stack.stack_id, client, physical,
                                  previous.get("Attributes") or {})
        try:
            outcome = await handler.update(request, previous.get("Properties") or {})
        except (AwsError, ResourceFailed, KeyError, TypeError, ValueError) as exc:
            self.event(stack, logical, physical, kind, "UPDATE_FAILED", _reason(exc))
            raise ResourceFailed(_reason(exc)) from None
        updated[logical] = previous
        self._record(stack, logical, kind, props, resource, outcome, done)
        self.event(stack, logical, outcome.physical_id, kind, "UPDATE_COMPLETE")

    def _record(self, stack: StackRecord, logical: str, kind: str, props: dict[str, Any], resource: dict[str, Any],
                outcome: Outcome, done: dict[str, dict[str, Any]]) -> None:
        doc = {"Type": kind, "PhysicalResourceId": outcome.physical_id, "Properties": props,
               "Attributes": outcome.attributes, "Status": "COMPLETE", "LastUpdated": self._clock(),
               "DeletionPolicy": resource.get("DeletionPolicy"),
               "UpdateReplacePolicy": resource.get("UpdateReplacePolicy"),
               "Metadata": resource.get("Metadata")}
        if outcome.ref is not None:
            doc["Ref"] = outcome.ref
        done[logical] = doc
        self.store.save_resource(stack.stack_id, logical, doc)

    async def _roll_back_update(self, stack: StackRecord, done: dict[str, dict[str, Any]], changed: list[str],
                                updated: dict[str, dict[str, Any]], replaced: dict[str, dict[str, Any]]) -> None:
        client = self._client(stack)
        for logical in reversed(changed):
            await self._delete_one(stack, logical, done[logical], forget=logical not in replaced)
        for logical, old in replaced.items():
            done[logical] = old
            self.store.save_resource(stack.stack_id, logical, old)
        for logical, old in updated.items():
            handler = self._handler(old["Type"])
            if handler is None:
                continue
            current = done[logical]
            request = ResourceRequest(logical, old["Type"], old.get("Properties") or {}, stack.name, stack.stack_id,
                                      client, str(current["PhysicalResourceId"]), current.get("Attributes") or {})
            self.event(stack, logical, request.physical_id or "", old["Type"], "UPDATE_IN_PROGRESS")
            try:
                await handler.update(request, current.get("Properties") or {})
                self.store.save_resource(stack.stack_id, logical, old)
                self.event(stack, logical, request.physical_id or "", old["Type"], "UPDATE_COMPLETE")
            except (AwsError, ResourceFailed, KeyError, TypeError, ValueError) as exc:
                self.event(stack, logical, request.physical_id or "", old["Type"], "UPDATE_FAILED", _reason(exc))

    async def _delete_one(self, stack: StackRecord, logical: str, doc: dict[str, Any], *, forget: bool = True) -> bool:
        kind = str(doc["Type"])
        physical = str(doc.get("PhysicalResourceId") or "")
        policy = doc.get("DeletionPolicy") if forget else doc.get("UpdateReplacePolicy")
        if policy == "Retain":
            self.event(stack, logical, physical, kind, "DELETE_SKIPPED")
            if forget:
                self.store.drop_resource(stack.stack_id, logical)
            return True
        handler = self._handler(kind)
        self.event(stack, logical, physical, kind, "DELETE_IN_PROGRESS")
        if handler is not None and physical:
            request = ResourceRequest(logical, kind, doc.get("Properties") or {}, stack.name, stack.stack_id,
                                      self._client(stack), physical, doc.get("Attributes") or {})
            try:
                await handler.delete(request)
            except (AwsError, ResourceFailed, KeyError, TypeError, ValueError) as exc:
                self.event(stack, logical, physical, kind, "DELETE_FAILED", _reason(exc))
                return False
        self.event(stack, logical, physical, kind, "DELETE_COMPLETE")
        if forget:
            self.store.drop_resource(stack.stack_id, logical)
        return True

    def _reverse_order(self, resources: dict[str, dict[str, Any]], doc: dict[str, Any]) -> list[str]:
        """Dependents before what they depend on, from the template the resources were made from."""
        processed = doc.get("ProcessedTemplate") or {}
        declared = processed.get("Resources") or {}
        names = frozenset(resources)
        graph = {k: intrinsics.references(declared.get(k, {}).get("Properties"), names) |
                 ({d for d in _list(declared.get(k, {}).get("DependsOn")) if d in names}) for k in resources}
        order: list[str] = []
        seen: set[str] = set()

        def visit(node: str) -> None:
            if node in seen:
                return
            seen.add(node)
            for dep in sorted(graph.get(node, ())):
                visit(dep)
            order.append(node)

        for node in sorted(resources):
            visit(node)
        return list(reversed(order))

    def _outputs(self, stack: StackRecord, prepared: Prepared, done: dict[str, dict[str, Any]]) -> str | None:
        scope = self._scope(stack, prepared, done)
        outputs = []
        exports: dict[str, str] = {}
        for name, output in (prepared.template.get("Outputs") or {}).items():
            cond = output.get("Condition")
            if cond is not None and not prepared.conditions.get(cond, False):
                continue
            try:
                value = intrinsics.evaluate(output["Value"], scope)
                item: dict[str, Any] = {"OutputKey": name, "OutputValue": _output_text(value)}
                if output.get("Description"):
                    item["Description"] = output["Description"]
                if output.get("Export"):
                    export_name = _output_text(intrinsics.evaluate(output["Export"]["Name"], scope))
                    item["ExportName"] = export_name
                    exports[export_name] = item["OutputValue"]
            except (TemplateError, NotReady) as exc:
                return f"Outputs.{name}: {exc}"
            outputs.append(item)
        clash = self.store.set_exports(stack.account, stack.region, stack.stack_id, exports)
        if clash is not None:
            return f"Export with name {clash} is already exported by stack " \
                   f"{self.store.export(stack.account, stack.region, clash)}"
        stack.doc["Outputs"] = outputs
        self.store.save_stack(stack)
        return None

    async def delete(self, stack: StackRecord, retain: frozenset[str] = frozenset()) -> None:
        self._stack_status(stack, "DELETE_IN_PROGRESS", "User Initiated")
        resources = {k: r.doc for k, r in self.store.resources(stack.stack_id).items()}
        ok = True
        for logical in self._reverse_order(resources, stack.doc):
            doc = dict(resources[logical])
            if logical in retain:
                doc["DeletionPolicy"] = "Retain"
            ok = await self._delete_one(stack, logical, doc) and ok
        if not ok:
            self._stack_status(stack, "DELETE_FAILED", "The following resource(s) failed to delete: "
                                                       f"[{', '.join(self.store.resources(stack.stack_id))}]. ")
            return
        self.store.set_exports(stack.account, stack.region, stack.stack_id, {})
        # The executed change set outlives its stack (DescribeChangeSet by ARN answers, as in AWS); the rest go.
        for change_set in self.store.change_sets(stack.stack_id):
            if not str(change_set.get("ExecutionStatus", "")).startswith("EXECUTE_"):
                self.store.drop_change_set(change_set["ChangeSetId"])
        self._stack_status(stack, "DELETE_COMPLETE")


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _output_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    return as_text(value)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, AwsError):
        return f"Resource handler returned message: \"{exc.message}\" (HandlerErrorCode: {_handler_code(exc)})"
    if isinstance(exc, KeyError):
        return f"Properties validation failed for resource: required key [{exc.args[0]}] not found"
    return str(exc)


def _handler_code(err: AwsError) -> str:
    if "NotFound" in err.code or "NoSuch" in err.code:
        return "NotFound"
    if "AlreadyExists" in err.code or "Conflict" in err.code or "InUse" in err.code:
        return "AlreadyExists"
    if "AccessDenied" in err.code:
        return "AccessDenied"
    if err.status >= 500:
        return "ServiceInternalError"
    return "InvalidRequest"
