"""SnapStart: snapshot templates, and the environments restored from them.

It owns the templates: one per function version configuration (the pool's key), each an environment
that ran INIT and its before-snapshot hooks once and then waits for clone requests (see the SnapStart
section of `hearth.sandbox.zygote`). New environments of that version are cloned from it copy-on-write
instead of running INIT again; they report `Restore Duration` and see
`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`.

Which environments are restored: those of published versions whose `SnapStart.ApplyOn` is
`PublishedVersions`, as AWS, and, when the operator turns it on (`HEARTH_SNAPSTART_LATEST=1`), those of
`$LATEST` too, for the inner development loop. Only Python runtimes forked by a zygote under the
namespace backend can be cloned; anything else starts on demand.

A template lives as long as its version configuration: it is retired when the function changes or
is deleted, and killed once its last clone is gone (clones live in namespaces nested in the
template's, so they die with it). It never decides when environments are started or reclaimed (the
pool does) and never runs an invocation itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from hearth.functions.model import FunctionVersion
from hearth.invoke import logs
from hearth.invoke.environment import Environment, Launcher, ReadyWaiter
from hearth.invoke.platform_log import LogStyle
from hearth.runtimes.registry import runtime_for
from hearth.sandbox.types import MemoryLimit, Sandbox, SandboxSpec, Snapshots

log = logging.getLogger(__name__)

# AWS lets a SnapStart version's INIT run for up to 15 minutes (on-demand INIT: 10 seconds).
TEMPLATE_INIT_TIMEOUT_S = 900.0
# What AWS does not give SnapStart functions: every clone would see the template's.
HIDDEN_VARIABLES = ("AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME")

# Forking a clone allocates its page tables in the template's memory cgroup, and the pages the clone
# copies before it has joined its own groups are charged there too; both stay charged until the clone
# ends (measured: ~1.1 MiB per clone of a 128 MB function). Without room for them, a burst of restores
# of a memory-tight function makes the kernel kill the template, and every clone with it (they live in
# namespaces nested in the template's). So the template's limit grows with its clones: the function's
# memory, plus a fixed margin, plus per clone 1/256 of the memory (page tables are ~1/512), at least
# 2 MiB. It never shrinks: the template is frozen between restores, so room it has is not used.
TEMPLATE_MARGIN_MB = 32

TemplateKey = tuple[str, str, str]  # the pool's key: (function ARN, version, revision id)


# Builds (not starts) an environment of `fv` as the pool does: (fv, initialization type, launcher,
# until_ready, restored, init timeout) -> Environment.
EnvFactory = Callable[[FunctionVersion, str, Launcher | None, ReadyWaiter | None, bool, float], Environment]
LogWriter = Callable[[FunctionVersion, str, list[tuple[int, str]]], None]


@dataclass(eq=False)
class Template:
    key: TemplateKey
    task: asyncio.Task[Environment]
    clones: set[str] = field(default_factory=set)
    retired: bool = False
    restoring: int = 0  # clone requests in flight: the template is thawed while there are any
    limit_mb: int = 0  # the template's memory limit as raised so far (0: the function's own)

    @property
    def env(self) -> Environment | None:
        if self.task.done() and not self.task.cancelled() and self.task.exception() is None:
            return self.task.result()
        return None


def supported_runtime(runtime: str) -> bool:
    """Runtimes Hearth can snapshot: Python (any version the zygote runs)."""
    info = runtime_for(runtime)
    return info is not None and info.kind == "python"


class SnapshotTemplates:
    def __init__(self, backend: Snapshots | None, make_env: EnvFactory, *, write_logs: LogWriter | None = None,
                 latest: bool = False, max_age_s: float | None = None) -> None:
        self._backend = backend  # None: the isolation backend cannot snapshot; nothing is restored
        self._make_env = make_env
        self.latest = latest  # also restore $LATEST environments (HEARTH_SNAPSTART_LATEST)
        self._write_logs = write_logs  # where template INIT logs go
        # A template older than this serves no new clone: clones inherit its environment, role session
        # included, so a new snapshot (with a new session) is taken before that session could end.
        self._max_age_s = max_age_s
        self._templates: dict[TemplateKey, Template] = {}
        self._by_clone: dict[str, Template] = {}
        self._retired: set[Template] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.templates_created = 0
        self.restores = 0

    @property
    def available(self) -> bool:
        return self._backend is not None

    def applies(self, fv: FunctionVersion) -> bool:
        """Whether new environments of `fv` are restored from a snapshot."""
        if self._backend is None or not supported_runtime(fv.runtime):
            return False
        wanted = self.latest if fv.version == "$LATEST" else fv.snap_start_apply_on == "PublishedVersions"
        # Extensions (started anew in each clone) and an exec wrapper (the bootstrap it ends in is the
        # template): design.md, "Extensions and SnapStart".
        return wanted

    async def template(self, fv: FunctionVersion, key: TemplateKey) -> Template:
        """The ready template of `fv`, made now if there is none. Raises what INIT raises
        (InitFailure); the next call tries again."""
        current = self._templates.get(key)
        if current is not None and current.task.done():
            env = current.env
            if env is None or not env.alive:
                self._templates.pop(key, None)
                self._end(current)
                current = None
            elif self._max_age_s is not None and time.monotonic() - env.created_at > self._max_age_s:
                self.discard(current)  # its clones keep running; it ends with the last of them
                current = None
        if current is None:
            current = Template(key, asyncio.ensure_future(self._create(fv)))
            self._templates[key] = current
        await asyncio.shield(current.task)
        return current

    async def _create(self, fv: FunctionVersion) -> Environment:
        assert self._backend is not None
        backend = self._backend

        async def launch(spec: SandboxSpec) -> Sandbox:
            return await backend.start(_without_log_names(spec), template=True)

        env = self._make_env(fv, "snap-start", launch, backend.template_ready, False, TEMPLATE_INIT_TIMEOUT_S)
        started = time.time()
        try:
            await env.start()  # raises InitFailure (the template is then dead)
        except asyncio.CancelledError:  # retired while INIT ran: the sandbox must not outlive us
            self._spawn(env.kill())
            raise
        self.templates_created += 1
        # Between clone requests the template is frozen, as a snapshot is: threads its INIT left
        # running use no CPU, and nothing of the function runs outside an environment.
        _quietly(env.sandbox, _freeze)
        events = env.take_init_log()
        took_ms = (time.time() - started) * 1000
        report = LogStyle.of(fv).render(logs.init_report_record(
            "snap-start", duration_ms=took_ms,
            text=f"INIT_REPORT Init Duration: {took_ms:.2f} ms\tPhase: init\tStatus: success\n"))
        if report is not None:
            events.append((int(time.time() * 1000), report))
        if self._write_logs is not None:
            self._write_logs(fv, env.log_stream, events)
        return env

    def launcher(self, template: Template) -> Launcher:
        """How an environment is restored from `template` (for the pool's Environment)."""
        assert self._backend is not None
        backend = self._backend
        env = template.env
        if env is None or env.sandbox is None:
            raise RuntimeError("the template is not ready")
        sandbox = env.sandbox

        async def restore(spec: SandboxSpec) -> Sandbox:
            self.restores += 1
            template.restoring += 1
            _make_room(template, env.memory_mb, sandbox)
            if template.restoring == 1:
                _quietly(sandbox, _thaw)
            try:
                # Returns once the clone has joined its own groups: freezing the template's group
                # afterwards cannot catch it.
                return await backend.clone(sandbox, _without_log_names(spec))
            finally:
                template.restoring -= 1
                if template.restoring == 0:
                    _quietly(sandbox, _freeze)

        return restore

    def discard(self, template: Template) -> None:
        """A template that cannot be cloned any more: the next `template()` takes a new snapshot."""
        if self._templates.get(template.key) is template:
            del self._templates[template.key]
        template.retired = True
        if not template.clones:
            self._end(template)
        else:
            self._retired.add(template)

    def clone_started(self, template: Template, env_id: str) -> None:
        template.clones.add(env_id)
        self._by_clone[env_id] = template

    def clone_gone(self, env_id: str) -> None:
        template = self._by_clone.pop(env_id, None)
        if template is None:
            return
        template.clones.discard(env_id)
        if template.retired and not template.clones:
            self._end(template)

    def retire(self, doomed: Callable[[TemplateKey], bool]) -> None:
        """Templates whose key is doomed serve no new clone; each ends when its last clone is gone."""
        for key in [k for k in self._templates if doomed(k)]:
            self.discard(self._templates[key])

    def _end(self, template: Template) -> None:
        self._retired.discard(template)
        if not template.task.done():
            template.task.cancel()
            return
        env = template.env
        if env is not None and env.alive:
            self._spawn(env.kill())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        templates = [*self._templates.values(), *self._retired]
        self._templates.clear()
        self._retired.clear()
        for template in templates:
            if not template.task.done():
                template.task.cancel()
            with contextlib.suppress(BaseException):
                await template.task
            env = template.env
            if env is not None:
                await env.kill()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def statistics(self) -> dict[str, object]:
        return {
            "templates": len(self._templates),
            "retired_templates": len(self._retired),
            "templates_created": self.templates_created,
            "restores": self.restores,
        }


def _without_log_names(spec: SandboxSpec) -> SandboxSpec:
    return dataclasses.replace(spec, env={k: v for k, v in spec.env.items() if k not in HIDDEN_VARIABLES})


def _freeze(sandbox: Sandbox) -> None:
    sandbox.freeze()


def _thaw(sandbox: Sandbox) -> None:
    sandbox.thaw()


def _quietly(sandbox: Sandbox | None, operation: Callable[[Sandbox], None]) -> None:
    # A template that died meanwhile has no group left: the next restore notices it is gone.
    with contextlib.suppress(OSError):
        if sandbox is not None:
            operation(sandbox)


def _make_room(template: Template, memory_mb: int, sandbox: Sandbox) -> None:
    """Raise the template's memory limit ahead of a clone (see TEMPLATE_MARGIN_MB); never lowers it."""
    per_clone = max(2, memory_mb // 256)
    wanted = memory_mb + TEMPLATE_MARGIN_MB + per_clone * (len(template.clones) + template.restoring)
    if wanted > template.limit_mb:
        if isinstance(sandbox, MemoryLimit):
            with contextlib.suppress(OSError):
                sandbox.raise_memory_limit(wanted << 20)
        template.limit_mb = wanted
