"""FunctionService: creates, updates and deletes functions, and resolves them for the invoke path.

It owns the function state machine (see `hearth.functions.config`), RevisionIds, the background
work that makes a function Active (extracting its code, checking its runtime is installed), crash
recovery, and the in-memory cache of resolved `FunctionVersion`s. It never renders AWS wire shapes,
never starts environments, and never runs function code.

Concurrency: every method runs on the asyncio loop. Store calls are synchronous and short; slow
work (writing a 50 MB archive, extracting it, probing runtimes) runs in threads. Any
read-modify-write that spans an `await` is finished with a compare-and-swap on the RevisionId, so a
concurrent change makes the later one fail instead of overwriting the earlier one.

Invocations during an update keep running the previous configuration (as on AWS) until the update
has finished; then listeners receive ("updated", new) and the pool retires old environments.
Decision: a runtime that is not installed on this host, or an archive that fails to extract, makes
the function State Failed with StateReasonCode `InvalidRuntime` / `InvalidZipFileException`
(AWS's enum values) and the reason in StateReason; a later successful update makes it Active again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from hearth.config import Settings
from hearth.functions import errors
from hearth.functions.config import PENDING_CODE, PENDING_REASON, FunctionConfig, aws_timestamp
from hearth.functions.model import FunctionVersion
from hearth.functions.names import LATEST, FunctionRef, InvalidFunctionRef, function_arn, parse_function_ref
from hearth.runtimes.registry import runtime_unavailable_reason
from hearth.store.blobs import BlobStore, ZipRejected
from hearth.store.db import AlreadyExists, RevisionMismatch, Store, VersionRow

log = logging.getLogger("hearth.functions")

Key = tuple[str, str, str]  # (account, region, name)
Listener = Callable[[str, FunctionVersion], None]

MAX_PAGE = 50  # AWS returns at most 50 functions per ListFunctions page


def new_revision() -> str:
    return str(uuid.uuid4())


class FunctionService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        blobs: BlobStore,
        *,
        runtime_check: Callable[[str], str | None] = runtime_unavailable_reason,
    ) -> None:
        self.settings = settings
        self._store = store
        self._blobs = blobs
        self._runtime_check = runtime_check
        self._live: dict[Key, FunctionVersion] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

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
        """The version an invocation runs. Served from memory after the first call (hot path)."""
        ref = self.parse_ref(account, region, name_or_arn, qualifier, action="InvokeFunction")
        q = ref.qualifier
        if q not in (None, LATEST):
            # Published versions and aliases come later; until then no other qualifier exists.
            raise errors.not_found(function_arn(region, account, ref.name, q))
        key = (account, region, ref.name)
        fv = self._live.get(key)
        if fv is None:
            row = self._store.get_version(account, region, ref.name)
            if row is None:
                raise errors.not_found(function_arn(region, account, ref.name, LATEST))
            fv = self._to_fv(FunctionConfig.from_json(row.config))
            self._live[key] = fv
        return fv

    def parse_ref(
        self, account: str, region: str, name_or_arn: str, qualifier: str | None, *, action: str
    ) -> FunctionRef:
        """Parse a FunctionName (+ Qualifier) and check it points into the caller's account and region."""
        try:
            ref = parse_function_ref(name_or_arn)
        except InvalidFunctionRef:
            raise errors.not_found(function_arn(region, account, name_or_arn)) from None
        if ref.region is not None and ref.region != region:
            raise errors.wrong_region(ref.region, region)
        if ref.account is not None and ref.account != account:
            raise errors.access_denied(
                account, action, function_arn(ref.region or region, ref.account, ref.name, ref.qualifier)
            )
        if qualifier is not None and ref.qualifier is not None and qualifier != ref.qualifier:
            raise errors.qualifier_mismatch()
        return FunctionRef(ref.name, qualifier if qualifier is not None else ref.qualifier, account, region)

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
            architectures=cfg.architectures,
        )

    # -- reads -------------------------------------------------------------------------------------

    def get(self, account: str, region: str, name: str) -> FunctionConfig:
        row = self._store.get_version(account, region, name)
        if row is None:
            raise errors.not_found(function_arn(region, account, name))
        return FunctionConfig.from_json(row.config)

    def list_functions(
        self, account: str, region: str, *, marker: str | None, max_items: int | None
    ) -> tuple[list[FunctionConfig], str | None]:
        """One page ordered by name; the marker is the last name of the previous page."""
        limit = min(max_items or MAX_PAGE, MAX_PAGE)
        rows = self._store.list_versions(account, region, after=marker, limit=limit + 1)
        configs = [FunctionConfig.from_json(r.config) for r in rows[:limit]]
        next_marker = configs[-1].name if len(rows) > limit else None
        return configs, next_marker

    def usage(self, account: str, region: str) -> tuple[int, int]:
        return self._store.usage(account, region)

    # -- writes ------------------------------------------------------------------------------------

    async def create(self, cfg: FunctionConfig, zip_file: bytes, tags: dict[str, str]) -> FunctionConfig:
        """Store the code and the Pending function; it becomes Active in the background."""
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
        self._live.pop(cfg.key, None)
        self._spawn(cfg.key, cfg.revision_id)
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
    ) -> FunctionConfig:
        current = self.get(account, region, name)
        self._check_updatable(current, revision_id)
        sha = self._blobs.sha256_hex(zip_file)
        if dry_run:
            return current.replace(code_sha256=sha, code_size=len(zip_file))
        await asyncio.to_thread(self._blobs.put, zip_file)
        return self._begin_update(current, code_sha256=sha, code_size=len(zip_file))

    def update_configuration(
        self,
        account: str,
        region: str,
        name: str,
        changes: dict[str, object],
        *,
        revision_id: str | None = None,
    ) -> FunctionConfig:
        current = self.get(account, region, name)
        self._check_updatable(current, revision_id)
        return self._begin_update(current, **changes)

    def _begin_update(self, current: FunctionConfig, **changes: object) -> FunctionConfig:
        # Keep serving the configuration that is live now until the update has finished.
        if current.key not in self._live and current.state == "Active":
            self._live[current.key] = self._to_fv(current)
        updated = current.replace(
            **changes,
            revision_id=new_revision(),
            last_modified=aws_timestamp(),
            last_update_status="InProgress",
            last_update_status_reason=PENDING_REASON,
            last_update_status_reason_code=PENDING_CODE,
        )
        try:
            self._store.put_version(_to_row(updated), expected_revision=current.revision_id)
        except RevisionMismatch:
            # Changed (or deleted) while the archive was being written: the other change wins.
            raise errors.update_in_progress(
                function_arn(current.region, current.account_id, current.name)
            ) from None
        self._spawn(updated.key, updated.revision_id)
        return updated

    def delete(self, account: str, region: str, name: str) -> None:
        row = self._store.get_version(account, region, name)
        if row is None or not self._store.delete_function(account, region, name):
            raise errors.not_found(function_arn(region, account, name))
        last = self._live.pop((account, region, name), None) or self._to_fv(
            FunctionConfig.from_json(row.config)
        )
        # Blobs stay: environments being retired may still read the code; a later GC can drop
        # archives no version references (store.all_code_hashes()).
        self._notify("deleted", last)

    # -- tags --------------------------------------------------------------------------------------

    def tags(self, account: str, region: str, name: str) -> dict[str, str]:
        self.get(account, region, name)
        return self._store.get_tags(account, region, name)

    def tag(self, account: str, region: str, name: str, tags: dict[str, str]) -> None:
        self.get(account, region, name)
        self._store.set_tags(account, region, name, tags)

    def untag(self, account: str, region: str, name: str, keys: list[str]) -> None:
        self.get(account, region, name)
        self._store.remove_tags(account, region, name, keys)

    # -- background completion ---------------------------------------------------------------------

    def _spawn(self, key: Key, revision: str) -> None:
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._finish(key, revision))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, key: Key, revision: str) -> None:
        """Pending -> Active|Failed, or InProgress -> Successful|Failed, for one revision."""
        row = self._store.get_version(*key)
        if row is None or row.revision_id != revision:
            return
        cfg = FunctionConfig.from_json(row.config)
        failure: tuple[str, str] | None = None
        try:
            await asyncio.to_thread(self._blobs.extract, cfg.code_sha256)
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
        # Something may have changed while we were extracting; the CAS below settles it.
        if failure is None:
            done = cfg.replace(
                state="Active",
                state_reason=None,
                state_reason_code=None,
                last_update_status="Successful",
                last_update_status_reason=None,
                last_update_status_reason_code=None,
                revision_id=new_revision(),
            )
        else:
            code, reason_text = failure
            done = cfg.replace(
                state="Failed",
                state_reason=reason_text,
                state_reason_code=code,
                last_update_status="Failed",
                last_update_status_reason=reason_text,
                last_update_status_reason_code=code,
                revision_id=new_revision(),
            )
        try:
            self._store.put_version(_to_row(done), expected_revision=revision)
        except RevisionMismatch:
            return
        fv = self._to_fv(done)
        self._live[key] = fv
        self._notify("updated", fv)

    # -- start and stop ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """Finish what a crash interrupted; re-extract code directories that went missing."""
        await asyncio.to_thread(self._blobs.cleanup_temporaries)
        for row in self._store.unfinished_versions():
            await self._finish((row.account_id, row.region, row.name), row.revision_id)
        for row in self._store.all_versions():
            if row.state != "Active" or self._blobs.code_path(row.code_sha256).is_dir():
                continue
            try:
                await asyncio.to_thread(self._blobs.extract, row.code_sha256)
            except (ZipRejected, FileNotFoundError) as exc:
                cfg = FunctionConfig.from_json(row.config)
                reason = f"The function's code could not be restored: {exc}"
                failed = cfg.replace(
                    state="Failed",
                    state_reason=reason,
                    state_reason_code="InternalError",
                    revision_id=new_revision(),
                )
                try:
                    self._store.put_version(_to_row(failed), expected_revision=row.revision_id)
                except RevisionMismatch:
                    pass
                self._live.pop(cfg.key, None)

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
