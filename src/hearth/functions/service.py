"""FunctionService: creates, updates, publishes and deletes functions, their versions, aliases and
resource-based policies, and resolves them for the invoke path.

It owns the function state machine (see `hearth.functions.config`), RevisionIds, the background
work that makes a function or a published version Active (extracting its code and layers, checking
its runtime is installed), crash recovery, the in-memory caches of resolved `FunctionVersion`s and
aliases, and the policy decision for callers from other accounts. It never renders AWS wire shapes,
never starts environments, and never runs function code.

Concurrency: every method runs on the asyncio loop. Store calls are synchronous and short; slow
work (writing a 50 MB archive, extracting it, probing runtimes) runs in threads. Any
read-modify-write that spans an `await` is finished with a compare-and-swap on the RevisionId, so a
concurrent change makes the later one fail instead of overwriting the earlier one.

Invocations during an update keep running the previous configuration (as on AWS) until the update
has finished; then listeners receive ("updated", new) and the pool retires old environments.
Published versions are immutable: once Active, they never change, so their `FunctionVersion` is
cached until the version or the function is deleted. Version numbers are never reused while the
function exists (a counter in the store, not the highest remaining number).
Decision: a runtime that is not installed on this host, or an archive that fails to extract, makes
the function State Failed with StateReasonCode `InvalidRuntime` / `InvalidZipFileException`
(AWS's enum values) and the reason in StateReason; a later successful update makes it Active again.

Cross-account access: a caller from another account may use a function only through an action in
`CROSS_ACCOUNT_ACTIONS`, and only when the resource-based policy of the qualifier it names (the
unqualified function's policy for no qualifier or `$LATEST`; the alias's or version's own policy
otherwise, as AWS requires the qualified ARN in the statement) allows its account.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from hearth.aws.authz.authorizer import ResourcePolicy
from hearth.config import Settings
from hearth.functions import errors, policy, states
from hearth.functions.aliases import Alias, check_routing
from hearth.functions.config import PENDING_CODE, PENDING_REASON, FunctionConfig, aws_timestamp
from hearth.functions.layers import LayerService
from hearth.functions.model import FunctionVersion
from hearth.functions.names import LATEST, FunctionRef, InvalidFunctionRef, function_arn, parse_function_ref
from hearth.functions.snapstart import SnapshotFailed, SnapshotTaker, VpcNetworks
from hearth.functions.store import AliasRow, AlreadyExists, FunctionStore, PolicyRow, RevisionMismatch, VersionRow
from hearth.runtimes.registry import runtime_unavailable_reason
from hearth.store.blobs import UNZIPPED_LIMIT, BlobStore, ZipRejected, inspect_zip

log = logging.getLogger("hearth.functions")

Key = tuple[str, str, str]  # (account, region, name)
VKey = tuple[str, str, str, str]  # (account, region, name, version)
# (event, version): "updated" and "deleted" (a whole function when the version is $LATEST), and
# "alias-deleted", whose version is $LATEST's with `version` set to the deleted alias's name.
Listener = Callable[[str, FunctionVersion], None]

# How stale another node's change to a function may be here, at most (cluster only; see resolve_ref).
CLUSTER_CHECK_S = 0.5
MAX_PAGE = 50  # AWS returns at most 50 functions (versions, aliases) per page
# The function operations AWS lets another account perform when the function's policy allows it
# (AWS's "resource-based policies" page lists them).
CROSS_ACCOUNT_ACTIONS = frozenset({
    "InvokeFunction", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionCode", "DeleteFunction",
    "PublishVersion", "ListVersionsByFunction", "CreateAlias", "GetAlias", "ListAliases", "UpdateAlias",
    "DeleteAlias", "GetPolicy", "PutFunctionConcurrency", "DeleteFunctionConcurrency", "ListTags", "TagResource",
    "UntagResource",
})

# Fields that do not make a new version when they alone changed since the last publish.
_NOT_PUBLISHED = frozenset({
    "version", "revision_id", "last_modified", "description", "latest_description", "state", "state_reason",
    "state_reason_code",
    "last_update_status", "last_update_status_reason", "last_update_status_reason_code",
})


def new_revision() -> str:
    return str(uuid.uuid4())


def _is_version_number(qualifier: str) -> bool:
    return qualifier.isdigit()


class FunctionService:
    def __init__(
        self,
        settings: Settings,
        store: FunctionStore,
        blobs: BlobStore,
        *,
        runtime_check: Callable[[str], str | None] = runtime_unavailable_reason,
        layers: LayerService | None = None,
        draw: Callable[[], float] = random.random,
        snapshots: SnapshotTaker | None = None,
        vpc_networks: VpcNetworks | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._blobs = blobs
        self._runtime_check = runtime_check
        self.layers = layers if layers is not None else LayerService(settings.data_dir, blobs)
        self._owns_layers = layers is None
        self._draw = draw  # the weighted-routing source: injectable so tests can steer it
        self._live: dict[Key, FunctionVersion] = {}
        self._published: dict[VKey, FunctionVersion] = {}
        self._aliases: dict[VKey, Alias] = {}
        self._next_cluster_check = 0.0
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # SnapStart (the environment pool): a SnapStart version stays Pending until its snapshot is
        # taken, as on AWS. None: nothing is snapshotted (unit tests, backends that cannot).
        self._snapshots = snapshots
        # VPC functions: their network is made ready while Pending, as AWS creates their interfaces.
        self._vpc_networks = vpc_networks

    # -- listeners and the invoke path ------------------------------------------------------------

    def add_listener(self, cb: Listener) -> None:
        self._listeners.append(cb)

    def _notify(self, event: str, fv: FunctionVersion) -> None:
        for cb in list(self._listeners):
            try:
                cb(event, fv)
            except Exception:
                log.exception("function listener failed on %s of %s", event, fv.function_arn)

    def resolve(self, account: str, region: str, name_or_arn: str, qualifier: str | None) -> FunctionVersion:
        """The version an invocation runs (an alias picks one by weight on every call). `account`
        is the caller's; another account's function needs its policy's consent. Served from memory
        after the first call (hot path)."""
        ref = self.parse_ref(account, region, name_or_arn, qualifier, action="InvokeFunction")
        return self.resolve_ref(ref)

    def resolve_ref(self, ref: FunctionRef) -> FunctionVersion:
        """Like `resolve` for an already parsed and authorized reference (ref.account is the owner)."""
        now = time.monotonic()
        if now >= self._next_cluster_check:
            # In a cluster, another node may have changed a function: at most every CLUSTER_CHECK_S, one
            # indexed read says so, and the whole cache is dropped (re-read on the next misses). Warm
            # environments of an old revision are not reused (the pool keys them by revision).
            self._next_cluster_check = now + CLUSTER_CHECK_S
            if self._store.changed_elsewhere():
                self._live.clear()
                self._published.clear()
                self._aliases.clear()
        account, region = ref.account or "", ref.region or ""
        q = ref.qualifier
        if q in (None, LATEST):
            return self._latest_fv(account, region, ref.name, q)
        assert q is not None
        if _is_version_number(q):
            return self._version_fv(account, region, ref.name, q)
        alias = self._alias(account, region, ref.name, q)
        if alias is None:
            raise errors.not_found(function_arn(region, account, ref.name, q))
        return self._target_fv(account, region, ref.name, alias.pick(self._draw), q)

    def _latest_fv(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionVersion:
        key = (account, region, name)
        fv = self._live.get(key)
        if fv is None:
            row = self._store.get_version(account, region, name)
            if row is None:
                raise errors.not_found(function_arn(region, account, name, LATEST))
            fv = self._to_fv(FunctionConfig.from_json(row.config))
            self._live[key] = fv
        return fv

    def _version_fv(self, account: str, region: str, name: str, version: str) -> FunctionVersion:
        vkey = (account, region, name, version)
        fv = self._published.get(vkey)
        if fv is None:
            row = self._store.get_version(account, region, name, version)
            if row is None:
                raise errors.not_found(function_arn(region, account, name, version))
            fv = self._to_fv(FunctionConfig.from_json(row.config))
            if not FunctionConfig.from_json(row.config).busy:
                self._published[vkey] = fv
        return fv

    def _target_fv(self, account: str, region: str, name: str, version: str, alias: str) -> FunctionVersion:
        try:
            if version == LATEST:
                return self._latest_fv(account, region, name, LATEST)
            return self._version_fv(account, region, name, version)
        except Exception:
            # The alias exists but its version vanished underneath: name what the caller asked for.
            raise errors.not_found(function_arn(region, account, name, alias)) from None

    def parse_ref(
        self, account: str, region: str, name_or_arn: str, qualifier: str | None, *, action: str
    ) -> FunctionRef:
        """Parse a FunctionName (+ Qualifier) and check the caller may perform `action` on it.

        The returned ref's `account` is the function's owner: the caller's own account, or another
        one whose resource-based policy allows the caller (for `CROSS_ACCOUNT_ACTIONS` only)."""
        try:
            ref = parse_function_ref(name_or_arn)
        except InvalidFunctionRef:
            raise errors.not_found(function_arn(region, account, name_or_arn)) from None
        if ref.region is not None and ref.region != region:
            raise errors.wrong_region(ref.region, region)
        if qualifier is not None and ref.qualifier is not None and qualifier != ref.qualifier:
            raise errors.qualifier_mismatch()
        q = qualifier if qualifier is not None else ref.qualifier
        owner = ref.account or account
        if owner != account:
            target = function_arn(region, owner, ref.name, q)
            if action not in CROSS_ACCOUNT_ACTIONS or not self._policy_allows(
                owner, region, ref.name, q, account, f"lambda:{action}", None
            ):
                raise errors.access_denied(account, action, target)
        return FunctionRef(ref.name, q, owner, region)

    # -- policy decisions (also used by URL serving and Hearth's own services) ---------------------

    def _policy_statements(self, account: str, region: str, name: str, qualifier: str | None) -> list[dict[str, Any]]:
        row = self._store.get_policy(account, region, name, "" if qualifier in (None, LATEST) else str(qualifier))
        return row.statements if row is not None else []

    def _policy_allows(
        self, owner: str, region: str, name: str, qualifier: str | None, caller: str | None, action: str,
        context: Mapping[str, str] | None,
    ) -> bool:
        statements = self._policy_statements(owner, region, name, qualifier)
        if caller is None:  # anonymous (a function URL with AuthType NONE): only Principal "*" counts
            statements = [s for s in statements if s.get("Principal") == "*"]
            caller = "anonymous"
        return policy.allows_account(statements, caller, action, context)

    def authorize(
        self,
        caller_account: str | None,
        target: FunctionVersion | str,
        action: str,
        *,
        context: Mapping[str, str] | None = None,
    ) -> None:
        """Raise AccessDeniedException unless `caller_account` may perform `action` (e.g.
        "lambda:InvokeFunctionUrl", with context {"lambda:FunctionUrlAuthType": "AWS_IAM"}) on
        `target`: a function ARN (qualified by an alias or version to use that qualifier's policy) or
        a FunctionVersion (its version's policy). The owner's own account is always allowed;
        `caller_account=None` is an anonymous caller, allowed only by `Principal: "*"` statements."""
        if isinstance(target, FunctionVersion):
            owner, region, name = target.account_id, target.region, target.name
            qualifier: str | None = target.version
            arn = target.qualified_arn
        else:
            ref = parse_function_ref(target)
            owner, region, name, qualifier = ref.account or "", ref.region or "", ref.name, ref.qualifier
            arn = target
        if caller_account == owner:
            return
        if not self._policy_allows(owner, region, name, qualifier, caller_account, action, context):
            who = caller_account or "anonymous"
            raise errors.access_denied(who, action.removeprefix("lambda:"), arn)

    def allows_service(
        self, arn: str, service_principal: str, source_arn: str | None, *, source_account: str | None = None,
        action: str = "lambda:InvokeFunction",
    ) -> bool:
        """Whether the function's policy (of the qualifier in `arn`) lets an AWS service such as
        "sns.amazonaws.com" invoke it on behalf of `source_arn` (owned by `source_account`)."""
        try:
            ref = parse_function_ref(arn)
        except InvalidFunctionRef:
            return False
        if ref.account is None or ref.region is None:
            return False
        statements = self._policy_statements(ref.account, ref.region, ref.name, ref.qualifier)
        return policy.allows_service(statements, service_principal, action, source_arn=source_arn,
                                     source_account=source_account)

    def _to_fv(self, cfg: FunctionConfig) -> FunctionVersion:
        return FunctionVersion(
            account_id=cfg.account_id,
            region=cfg.region,
            name=cfg.name,
            version=cfg.version,
            function_arn=function_arn(cfg.region, cfg.account_id, cfg.name),
            runtime=cfg.runtime,
            handler=cfg.handler,
            memory_mb=cfg.memory_size,
            timeout_s=cfg.timeout,
            ephemeral_mb=cfg.ephemeral_storage,
            environment=dict(cfg.environment),
            code_dir=self._blobs.code_path(cfg.code_sha256),
            code_sha256=cfg.code_sha256,
            revision_id=cfg.revision_id,
            state=cfg.state,
            state_reason=cfg.state_reason,
            state_reason_code=cfg.state_reason_code,
            last_update_status=cfg.last_update_status or "Successful",
            log_format=cfg.log_format,
            log_group=cfg.effective_log_group,
            application_log_level=cfg.application_log_level,
            system_log_level=cfg.system_log_level,
            tracing_mode=cfg.tracing_mode,
            architectures=cfg.architectures,
            layer_dirs=tuple(self._blobs.code_path(sha) for sha in cfg.layer_shas),
            snap_start_apply_on=cfg.snap_start_apply_on,
            role=cfg.role,
            vpc_subnet_ids=cfg.vpc_subnet_ids,
            vpc_security_group_ids=cfg.vpc_security_group_ids,
        )

    # -- reads -------------------------------------------------------------------------------------

    def get(self, account: str, region: str, name: str) -> FunctionConfig:
        row = self._store.get_version(account, region, name)
        if row is None:
            raise errors.not_found(function_arn(region, account, name))
        return FunctionConfig.from_json(row.config)

    def get_qualified(self, account: str, region: str, name: str, qualifier: str | None) -> FunctionConfig:
        """The configuration GetFunction shows for a qualifier: $LATEST, a version, or an alias's
        primary version. 404 names the qualified ARN the caller asked for."""
        if qualifier in (None, LATEST):
            try:
                return self.get(account, region, name)
            except Exception:
                if qualifier == LATEST:
                    raise errors.not_found(function_arn(region, account, name, LATEST)) from None
                raise
        assert qualifier is not None
        missing = errors.not_found(function_arn(region, account, name, qualifier))
        version = qualifier
        if not _is_version_number(qualifier):
            alias = self._alias(account, region, name, qualifier)
            if alias is None:
                raise missing
            version = alias.function_version
            if version == LATEST:
                return self.get(account, region, name)
        row = self._store.get_version(account, region, name, version)
        if row is None:
            raise missing
        return FunctionConfig.from_json(row.config)

    def list_functions(
        self, account: str, region: str, *, marker: str | None, max_items: int | None, all_versions: bool = False
    ) -> tuple[list[FunctionConfig], str | None]:
        """One page ordered by name; the marker is the last name of the previous page."""
        limit = min(max_items or MAX_PAGE, MAX_PAGE)
        if not all_versions:
            rows = self._store.list_versions(account, region, after=marker, limit=limit + 1)
            configs = [FunctionConfig.from_json(r.config) for r in rows[:limit]]
            next_marker = configs[-1].name if len(rows) > limit else None
            return configs, next_marker
        # Every version of each function on the page (a page boundary never splits a function).
        names = [r.name for r in self._store.list_versions(account, region, after=marker, limit=limit + 1)]
        configs = []
        for fn in names[:limit]:
            configs.extend(self.list_versions(account, region, fn))
        return configs, (names[limit - 1] if len(names) > limit else None)

    def list_versions(self, account: str, region: str, name: str) -> list[FunctionConfig]:
        """$LATEST then the published versions in number order."""
        rows = self._store.list_function_versions(account, region, name)
        if not rows:
            raise errors.not_found(function_arn(region, account, name))
        configs = [FunctionConfig.from_json(r.config) for r in rows]
        return sorted(configs, key=lambda c: -1 if c.version == LATEST else int(c.version))

    def usage(self, account: str, region: str) -> tuple[int, int]:
        """(code storage, function count): every version's code and every layer version's, as AWS counts."""
        size, count = self._store.usage(account, region)
        return size + self.layers.total_code_size(account, region), count

    # -- writes ------------------------------------------------------------------------------------

    async def create(
        self, cfg: FunctionConfig, zip_file: bytes, tags: dict[str, str], *, publish: bool = False
    ) -> FunctionConfig:
        """Store the code and the Pending function; it becomes Active in the background. With
        `publish`, version 1 is created with it (Pending too, finished the same way)."""
        sha = await asyncio.to_thread(self._blobs.put, zip_file)
        cfg = cfg.replace(
            code_sha256=sha,
            code_size=len(zip_file),
            revision_id=new_revision(),
            last_modified=aws_timestamp(),
            state="Pending",
            state_reason=PENDING_REASON,
            state_reason_code=PENDING_CODE,
            last_update_status=None,
            last_update_status_reason=None,
            last_update_status_reason_code=None,
        )
        try:
            self._store.create_function(_to_row(cfg), tags)
        except AlreadyExists:
            raise errors.already_exists(cfg.name) from None
        self._forget(cfg.key)
        self._spawn((*cfg.key, LATEST), cfg.revision_id)
        if publish:
            version = self._insert_published(cfg, None)
            return cfg.replace(version=version.version)  # AWS answers with the $LATEST shape, Version "1"
        return cfg

    def _check_updatable(self, cfg: FunctionConfig, revision_id: str | None) -> None:
        if cfg.state == "Pending":
            raise errors.wrong_state(cfg.state)
        if cfg.last_update_status == "InProgress":
            raise errors.update_in_progress(function_arn(cfg.region, cfg.account_id, cfg.name))
        if revision_id is not None and revision_id != cfg.revision_id:
            raise errors.precondition_failed()

    async def update_code(
        self,
        account: str,
        region: str,
        name: str,
        zip_file: bytes,
        *,
        revision_id: str | None = None,
        dry_run: bool = False,
        publish: bool = False,
        unzipped_size: int = 0,
    ) -> FunctionConfig:
        current = self.get(account, region, name)
        self._check_updatable(current, revision_id)
        sha = self._blobs.sha256_hex(zip_file)
        _check_combined_size(unzipped_size + current.layers_unzipped_size)
        if dry_run:
            return current.replace(code_sha256=sha, code_size=len(zip_file))
        await asyncio.to_thread(self._blobs.put, zip_file)
        updated = self._begin_update(
            current, code_sha256=sha, code_size=len(zip_file), code_unzipped_size=unzipped_size
        )
        if publish:
            return self._insert_published(updated, None)
        return updated

    def update_configuration(
        self,
        account: str,
        region: str,
        name: str,
        changes: dict[str, object],
        *,
        revision_id: str | None = None,
        layers: list[str] | None = None,
    ) -> FunctionConfig:
        """Apply configuration changes; `layers` (when given) replaces the function's layer list."""
        current = self.get(account, region, name)
        self._check_updatable(current, revision_id)
        if layers is not None:
            unzipped = current.code_unzipped_size
            if not unzipped:  # a function from before sizes were recorded: measure its archive once
                try:
                    unzipped = inspect_zip(self._blobs.read(current.code_sha256))
                except (OSError, ZipRejected):
                    unzipped = 0
            changes = {**changes, **self.layer_fields(account, region, layers, unzipped)}
        return self._begin_update(current, **changes)

    def layer_fields(self, account: str, region: str, arns: list[str], unzipped_size: int) -> dict[str, Any]:
        """FunctionConfig fields for a Layers parameter, checked as AWS checks it (count, region,
        one version per layer, existence, cross-account grants, combined unzipped size)."""
        found = self.layers.resolve_for_function(account, region, arns)
        layers_size = sum(lv.unzipped_size for lv in found)
        _check_combined_size(unzipped_size + layers_size)
        return {
            "layers": tuple(lv.arn for lv in found),
            "layer_shas": tuple(lv.code_sha256 for lv in found),
            "layer_sizes": tuple(lv.code_size for lv in found),
            "layers_unzipped_size": layers_size,
        }

    def _begin_update(self, current: FunctionConfig, **changes: object) -> FunctionConfig:
        # Keep serving the configuration that is live now until the update has finished.
        if current.key not in self._live and current.state == "Active":
            self._live[current.key] = self._to_fv(current)
        updated = states.check(current, current.replace(
            **changes,
            revision_id=new_revision(),
            last_modified=aws_timestamp(),
            last_update_status=states.UpdateStatus.IN_PROGRESS,
            last_update_status_reason=PENDING_REASON,
            last_update_status_reason_code=PENDING_CODE,
        ))
        try:
            self._store.put_version(_to_row(updated), expected_revision=current.revision_id)
        except RevisionMismatch:
            # Changed (or deleted) while the archive was being written: the other change wins.
            raise errors.update_in_progress(
                function_arn(current.region, current.account_id, current.name)
            ) from None
        self._spawn((*updated.key, LATEST), updated.revision_id)
        return updated

    def delete(self, account: str, region: str, name: str) -> None:
        row = self._store.get_version(account, region, name)
        if row is None or not self._store.delete_function(account, region, name):
            raise errors.not_found(function_arn(region, account, name))
        last = self._live.get((account, region, name)) or self._to_fv(FunctionConfig.from_json(row.config))
        self._forget((account, region, name))
        # Blobs stay: environments being retired may still read the code; a later GC can drop
        # archives no version references (store.all_code_hashes()).
        self._notify("deleted", last)

    def _forget(self, key: Key) -> None:
        """Drop every cached view of one function (after a delete or a re-create)."""
        self._live.pop(key, None)
        for vkey in [k for k in self._published if k[:3] == key]:
            del self._published[vkey]
        for akey in [k for k in self._aliases if k[:3] == key]:
            del self._aliases[akey]

    # -- published versions ------------------------------------------------------------------------

    def publish_version(
        self,
        account: str,
        region: str,
        name: str,
        *,
        code_sha256: str | None = None,
        revision_id: str | None = None,
        description: str | None = None,
    ) -> FunctionConfig:
        """PublishVersion: a new immutable version from $LATEST, or the newest version when nothing
        changed since it was published (as AWS)."""
        latest = self.get(account, region, name)
        if latest.busy:
            self._check_updatable(latest, None)
        if revision_id is not None and revision_id != latest.revision_id:
            raise errors.precondition_failed()
        current_sha = base64.b64encode(bytes.fromhex(latest.code_sha256)).decode()
        if code_sha256 is not None and code_sha256 != current_sha:
            raise errors.invalid_parameter(
                f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST ({current_sha}). "
                "Please try again with the CodeSHA256 in $LATEST."
            )
        published = [c for c in self.list_versions(account, region, name) if c.version != LATEST]
        if published and _unchanged_since(published[-1], latest):
            return published[-1]
        version = self._insert_published(latest, description)
        self._new_latest_revision(latest)
        return version

    def _insert_published(self, latest: FunctionConfig, description: str | None) -> FunctionConfig:
        number = self._store.last_version_number(latest.account_id, latest.region, latest.name)
        if number is None:
            raise errors.not_found(function_arn(latest.region, latest.account_id, latest.name))
        pending = latest.busy or self._snapshot_applies(self._to_fv(latest.replace(version="1")))
        version = latest.replace(
            version=str(number + 1),
            revision_id=new_revision(),
            description=latest.description if description is None else description,
            latest_description=latest.description,
            last_update_status=None if pending else "Successful",
            last_update_status_reason=None,
            last_update_status_reason_code=None,
        )
        if pending:
            version = version.replace(state="Pending", state_reason=PENDING_REASON, state_reason_code=PENDING_CODE)
        try:
            self._store.insert_version(_to_row(version), previous_number=number)
        except RevisionMismatch:
            raise errors.update_in_progress(function_arn(latest.region, latest.account_id, latest.name)) from None
        if pending:
            self._spawn((*version.key, version.version), version.revision_id)
        return version

    def delete_version(self, account: str, region: str, name: str, version: str) -> None:
        referencing = [a.alias for a in self._store.list_aliases(account, region, name)
                       if version in (a.document.get("function_version"), *(a.document.get("weights") or {}))]
        if referencing:
            raise errors.conflict(
                f"Unable to delete version because the following aliases reference it: [{', '.join(referencing)}]"
            )
        self._store.delete_version(account, region, name, version)
        self._published.pop((account, region, name, version), None)
        # Idle environments of the deleted version are reclaimed by the pool's keep-alive.

    # -- aliases -----------------------------------------------------------------------------------

    def _alias(self, account: str, region: str, name: str, alias: str) -> Alias | None:
        key = (account, region, name, alias)
        found = self._aliases.get(key)
        if found is None:
            row = self._store.get_alias(account, region, name, alias)
            if row is None:
                return None
            found = Alias.from_document(account, region, name, alias, row.revision_id, row.document)
            self._aliases[key] = found
        return found

    def _version_exists(self, account: str, region: str, name: str) -> Callable[[str], bool]:
        def exists(version: str) -> bool:
            return self._store.get_version(account, region, name, version) is not None

        return exists

    def get_alias(self, account: str, region: str, name: str, alias: str) -> Alias:
        self.get(account, region, name)
        found = self._alias(account, region, name, alias)
        if found is None:
            raise errors.alias_not_found(function_arn(region, account, name, alias))
        return found

    def create_alias(
        self, account: str, region: str, name: str, alias: str, version: str, description: str,
        weights: dict[str, float],
    ) -> Alias:
        if self._store.get_version(account, region, name) is None:
            raise errors.not_found(function_arn(region, account, name, version))
        check_routing(account, region, name, version, weights, self._version_exists(account, region, name))
        record = Alias(account, region, name, alias, version, new_revision(), description, dict(weights))
        try:
            self._store.put_alias(_alias_row(record), expected_revision=None, create=True)
        except AlreadyExists:
            raise errors.alias_exists(record.arn) from None
        self._aliases[(account, region, name, alias)] = record
        return record

    def update_alias(
        self, account: str, region: str, name: str, alias: str, *, version: str | None, description: str | None,
        weights: dict[str, float] | None, revision_id: str | None,
    ) -> Alias:
        self.get(account, region, name)
        current = self._alias(account, region, name, alias)
        if current is None:
            raise errors.alias_not_found_for_update(function_arn(region, account, name, alias))
        if revision_id is not None and revision_id != current.revision_id:
            raise errors.precondition_failed()
        target = version if version is not None else current.function_version
        new_weights = dict(weights) if weights is not None else dict(current.weights)
        check_routing(account, region, name, target, new_weights, self._version_exists(account, region, name))
        record = Alias(account, region, name, alias, target, new_revision(),
                       current.description if description is None else description, new_weights)
        try:
            self._store.put_alias(_alias_row(record), expected_revision=current.revision_id, create=False)
        except RevisionMismatch:
            raise errors.precondition_failed() from None
        self._aliases[(account, region, name, alias)] = record
        return record

    def delete_alias(self, account: str, region: str, name: str, alias: str) -> None:
        self.get(account, region, name)
        existed = self._alias(account, region, name, alias) is not None
        self._store.delete_alias(account, region, name, alias)  # a missing alias is no error (AWS: 204)
        self._aliases.pop((account, region, name, alias), None)
        if existed:  # what was configured for the alias goes with it (its provisioned concurrency)
            self._notify("alias-deleted", dataclasses.replace(self._latest_fv(account, region, name, None),
                                                              version=alias))

    def list_aliases(self, account: str, region: str, name: str, version: str | None) -> list[Alias]:
        self.get(account, region, name)
        rows = self._store.list_aliases(account, region, name)
        found = [Alias.from_document(account, region, name, r.alias, r.revision_id, r.document) for r in rows]
        return [a for a in found if version is None or a.function_version == version]

    # -- resource-based policies -------------------------------------------------------------------

    def _policy_target(self, account: str, region: str, name: str, qualifier: str | None, *, op: str) -> str:
        """The policy key ('' or the qualifier) of an existing function and qualifier, with the 404
        each operation answers (recorded): GetPolicy says only "does not exist"; AddPermission and
        RemovePermission name the function, version or alias that is missing."""
        if self._store.get_version(account, region, name) is None:
            if op == "GetPolicy":
                raise errors.resource_not_found(errors.NOT_EXIST)
            if op == "RemovePermission":
                raise errors.resource_not_found(f"No policy found for: {function_arn(region, account, name)}")
            raise errors.not_found(function_arn(region, account, name))
        if qualifier in (None, LATEST):
            return ""
        assert qualifier is not None
        if _is_version_number(qualifier):
            exists = self._store.get_version(account, region, name, qualifier) is not None
        else:
            exists = self._alias(account, region, name, qualifier) is not None
        if exists:
            return qualifier
        if op == "GetPolicy":
            raise errors.resource_not_found(errors.NOT_EXIST)
        if _is_version_number(qualifier) or not set(qualifier) <= _ALIAS_CHARS:
            raise errors.not_found(function_arn(region, account, name, qualifier))
        raise errors.alias_not_found(function_arn(region, account, name, qualifier))

    def _unpolicied_revision(self, account: str, region: str, name: str, key: str) -> str | None:
        """The RevisionId AddPermission expects while a target has no policy yet: the target's own (the
        alias's, the version's, or $LATEST's), as AWS (recorded)."""
        if key and not key.isdigit():
            alias = self._store.get_alias(account, region, name, key)
            return alias.revision_id if alias else None
        version = self._store.get_version(account, region, name, key or LATEST)
        return version.revision_id if version else None

    def add_permission(
        self, account: str, region: str, name: str, qualifier: str | None, statement_args: dict[str, Any],
        *, revision_id: str | None,
    ) -> dict[str, Any]:
        if qualifier == LATEST:
            raise errors.invalid_parameter("We currently do not support adding policies for $LATEST.")
        key = self._policy_target(account, region, name, qualifier, op="AddPermission")
        row = self._store.get_policy(account, region, name, key)
        current = row.statements if row else []
        if revision_id is not None and revision_id != (
                row.revision_id if row else self._unpolicied_revision(account, region, name, key)):
            raise errors.precondition_failed_for("GetPolicy")
        sid = statement_args["sid"]
        if any(s.get("Sid") == sid for s in current):
            raise errors.statement_exists(sid)
        statement = policy.function_statement(
            resource=function_arn(region, account, name, key or None), **statement_args
        )
        new = PolicyRow(account, region, name, key, [*current, statement], new_revision())
        try:
            self._store.put_policy(new, expected_revision=row.revision_id if row else None)
        except RevisionMismatch:
            raise errors.precondition_failed_for("GetPolicy") from None
        return statement

    def remove_permission(
        self, account: str, region: str, name: str, qualifier: str | None, sid: str, *, revision_id: str | None
    ) -> None:
        key = self._policy_target(account, region, name, qualifier, op="RemovePermission")
        row = self._store.get_policy(account, region, name, key)
        if row is None:
            raise errors.resource_not_found(errors.NO_POLICY)
        if revision_id is not None and revision_id != row.revision_id:
            raise errors.precondition_failed_for("GetPolicy")
        kept = [s for s in row.statements if s.get("Sid") != sid]
        if len(kept) == len(row.statements):
            raise errors.statement_not_found(sid)
        new = PolicyRow(account, region, name, key, kept, new_revision())
        try:
            self._store.put_policy(new, expected_revision=row.revision_id)
        except RevisionMismatch:
            raise errors.precondition_failed_for("GetPolicy") from None

    def resource_policy(self, arn: str) -> ResourcePolicy | None:
        """A function's owner and its (unqualified) resource policy, for the gateway's authorizer: a
        statement naming a user or role of the function's own account grants it there."""
        parts = arn.split(":")
        if len(parts) < 7 or parts[5] != "function":
            return None
        account, region, name = parts[4], parts[3], parts[6]
        row = self._store.get_policy(account, region, name, "")
        return ResourcePolicy(account, policy.document(row.statements) if row is not None and row.statements else None)

    def get_policy(self, account: str, region: str, name: str, qualifier: str | None) -> tuple[str, str]:
        """(policy document JSON, RevisionId)."""
        key = self._policy_target(account, region, name, qualifier, op="GetPolicy")
        row = self._store.get_policy(account, region, name, key)
        if row is None:
            raise errors.resource_not_found(errors.NOT_EXIST)
        return policy.document(row.statements), row.revision_id

    # -- tags --------------------------------------------------------------------------------------

    def tags(self, account: str, region: str, name: str) -> dict[str, str]:
        self.get(account, region, name)
        return self._store.get_tags(account, region, name)

    def tag(self, account: str, region: str, name: str, tags: dict[str, str]) -> None:
        latest = self.get(account, region, name)
        self._store.set_tags(account, region, name, tags)
        self._new_latest_revision(latest)

    def untag(self, account: str, region: str, name: str, keys: list[str]) -> None:
        latest = self.get(account, region, name)
        self._store.remove_tags(account, region, name, keys)
        self._new_latest_revision(latest)

    def _new_latest_revision(self, latest: FunctionConfig) -> None:
        """Give $LATEST a new RevisionId after a change that is not a configuration update (tags, a
        published version), as AWS does. Environments are not touched: the configuration they run is
        the same. Skipped while an update or creation is being finished (its completion is keyed by
        the revision) and when $LATEST changed meanwhile (that change gave it a new revision anyway)."""
        if latest.busy:
            return
        try:
            self._store.put_version(_to_row(latest.replace(revision_id=new_revision())),
                                    expected_revision=latest.revision_id)
        except RevisionMismatch:
            pass

    # -- background completion ---------------------------------------------------------------------

    def _spawn(self, key: VKey, revision: str) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._finish(key, revision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, key: VKey, revision: str) -> None:
        """Pending -> Active|Failed, or InProgress -> Successful|Failed, for one revision of one version."""
        row = self._store.get_version(*key)
        if row is None or row.revision_id != revision:
            return
        cfg = FunctionConfig.from_json(row.config)
        failure: tuple[str, str] | None = None
        try:
            await asyncio.to_thread(self._blobs.extract, cfg.code_sha256)
            await asyncio.to_thread(self.layers.ensure_extracted, cfg.layer_shas)
            reason = await asyncio.to_thread(self._runtime_check, cfg.runtime)
            if reason is not None:
                failure = ("InvalidRuntime", reason)
        except ZipRejected as exc:
            failure = ("InvalidZipFileException", str(exc))
        except FileNotFoundError:
            failure = (
                "InternalError",
                "The function's code archive is missing from this Hearth data directory.",
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("finishing %s failed", key)
            failure = ("InternalError", f"Hearth could not prepare the function's code: {exc}")
        if failure is None and cfg.vpc_subnet_ids and self._vpc_networks is not None:
            reason = await self._vpc_networks.prepare(self._to_fv(cfg))
            if reason is not None:
                failure = ("InvalidSubnet", reason)
        # Something may have changed while we were extracting; the CAS below settles it.
        done = _settled(cfg, failure)
        if failure is None and cfg.version != LATEST and self._snapshot_applies(self._to_fv(done)):
            failure = await self._snapshot(done)
            if failure is not None:
                done = _settled(cfg, failure)
        try:
            self._store.put_version(_to_row(done), expected_revision=revision)
        except RevisionMismatch:
            return
        fv = self._to_fv(done)
        if cfg.version == LATEST:
            self._live[key[:3]] = fv
            self._notify("updated", fv)
        else:
            # A published version had no environments while Pending: nothing to retire.
            self._published[key] = fv

    async def _snapshot(self, active: FunctionConfig) -> tuple[str, str] | None:
        """Take a SnapStart version's snapshot (INIT once): None, or the version's failure."""
        assert self._snapshots is not None
        try:
            await self._snapshots.prepare(self._to_fv(active))
        except asyncio.CancelledError:
            raise
        except SnapshotFailed as exc:
            return _snapshot_failure(exc.error_type, exc.payload)
        except Exception as exc:  # whatever else went wrong fails the version, never the service
            log.exception("taking the snapshot of %s failed", active.key)
            return _snapshot_failure(type(exc).__name__, b"")
        return None

    def _snapshot_applies(self, fv: FunctionVersion) -> bool:
        return self._snapshots is not None and self._snapshots.snapshot_applies(fv)

    # -- start and stop ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Finish what a crash interrupted; re-extract code and layer directories that went missing."""
        await asyncio.to_thread(self._blobs.cleanup_temporaries)
        for row in self._store.unfinished_versions():
            await self._finish((row.account_id, row.region, row.name, row.version), row.revision_id)
        for row in self._store.all_versions():
            cfg = FunctionConfig.from_json(row.config)
            shas = (row.code_sha256, *cfg.layer_shas)
            if row.state != "Active" or all(self._blobs.code_path(sha).is_dir() for sha in shas):
                continue
            try:
                for sha in shas:
                    await asyncio.to_thread(self._blobs.extract, sha)
            except (ZipRejected, FileNotFoundError) as exc:
                reason = f"The function's code could not be restored: {exc}"
                failed = states.check(cfg, cfg.replace(
                    state=states.State.FAILED,
                    state_reason=reason,
                    state_reason_code="InternalError",
                    revision_id=new_revision(),
                ))
                try:
                    self._store.put_version(_to_row(failed), expected_revision=row.revision_id)
                except RevisionMismatch:
                    pass
                self._forget(cfg.key)

    async def wait_idle(self) -> None:
        """Wait for every background completion started so far (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop background work. Unfinished transitions stay durable and are finished by recover()."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._live.clear()
        self._published.clear()
        self._aliases.clear()
        if self._owns_layers:
            self.layers.close()


_ALIAS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _check_combined_size(total: int) -> None:
    """Code plus layers must stay within the unzipped limit (AWS's message)."""
    if total > UNZIPPED_LIMIT:
        raise errors.invalid_parameter(
            f"Function code combined with layers exceeds the maximum allowed size of {UNZIPPED_LIMIT} bytes. "
            f"The actual size is {total} bytes."
        )


def _publishable(cfg: FunctionConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_json().items() if k not in _NOT_PUBLISHED}


def _unchanged_since(version: FunctionConfig, latest: FunctionConfig) -> bool:
    """Whether $LATEST is what `version` was published from (then PublishVersion answers `version`).
    Versions published before Hearth recorded $LATEST's description compare without it."""
    return _publishable(version) == _publishable(latest) and (
        version.latest_description is None or version.latest_description == latest.description)


def _alias_row(alias: Alias) -> AliasRow:
    return AliasRow(alias.account_id, alias.region, alias.function_name, alias.name, alias.document(),
                    alias.revision_id)


def _to_row(cfg: FunctionConfig) -> VersionRow:
    return VersionRow(
        account_id=cfg.account_id,
        region=cfg.region,
        name=cfg.name,
        version=cfg.version,
        config=cfg.to_json(),
        revision_id=cfg.revision_id,
        state=cfg.state,
        last_update_status=cfg.last_update_status,
        code_sha256=cfg.code_sha256,
        code_size=cfg.code_size,
    )


def _snapshot_failure(error_type: str, payload: bytes) -> tuple[str, str]:
    """A SnapStart version's (StateReasonCode, StateReason) when its snapshot's INIT failed."""
    message = _init_error_message(payload)
    reason = f"The function's snapshot could not be created: INIT failed with {error_type}"
    return ("FunctionError", f"{reason}: {message}" if message else reason)


def _init_error_message(payload: object) -> str:
    try:
        doc = json.loads(payload) if isinstance(payload, bytes | str) and payload else {}
    except ValueError:
        return ""
    message = doc.get("errorMessage") if isinstance(doc, dict) else None
    return str(message) if message else ""


def _settled(cfg: FunctionConfig, failure: tuple[str, str] | None) -> FunctionConfig:
    """A Pending (or InProgress) configuration made Active (Successful), or Failed with (code, reason)."""
    code, reason = failure if failure is not None else (None, None)
    return states.check(cfg, cfg.replace(
        state=states.State.FAILED if failure else states.State.ACTIVE,
        state_reason=reason,
        state_reason_code=code,
        last_update_status=states.UpdateStatus.FAILED if failure else states.UpdateStatus.SUCCESSFUL,
        last_update_status_reason=reason,
        last_update_status_reason_code=code,
        revision_id=new_revision(),
    ))
