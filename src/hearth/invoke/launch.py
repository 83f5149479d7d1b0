"""What an environment for one function version is started with: the runtime's command, mounts and
the environment variables AWS sets.

It owns the translation of a `FunctionVersion` into a `SandboxSpec`. It never starts processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import botocore

from hearth.functions.model import FunctionVersion
from hearth.runtimes.registry import RUNTIMES_DIR, RuntimeInfo, installed_runtimes, node_sdk_dir, runtime_for
from hearth.sandbox.types import NetworkRequest, PythonForkSpec, SandboxSpec

# 1,769 MB buys one full vCPU on AWS; CPU is proportional to memory.
MB_PER_VCPU = 1769
# Where Hearth's SDK (boto3 and friends) appears inside an environment, as in AWS's managed runtimes.
SDK_MOUNT = "/var/lang/lib/site-packages"
# Where the shared AWS SDK for JavaScript v3 appears inside an environment: the `node_modules` of the new
# root, because ES modules ignore NODE_PATH and find packages only in the parents' node_modules (the
# bootstrap keeps CommonJS from finding it there, so that layers in NODE_PATH win over it, as on AWS).
NODE_SDK_MOUNT = "/node_modules"
# Where Hearth's local CA certificate (`hearth serve --https-port`) appears inside an environment.
CA_MOUNT = "/var/hearth/ca"
# Where the extensions launcher (runtimes/extensions_launcher.py) appears inside an environment.
LAUNCHER_MOUNT = "/var/hearth/extensions_launcher.py"
LAUNCHER = RUNTIMES_DIR / "extensions_launcher.py"
# Where the zygote module appears inside a SnapStart environment whose runtime is exec'd by a wrapper.
ZYGOTE_MOUNT = "/var/hearth/zygote.py"
ZYGOTE = Path(__file__).resolve().parent.parent / "sandbox" / "zygote.py"
# The site-packages directory Hearth itself runs from: it carries boto3 and botocore.
SDK_DIR = Path(botocore.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class LaunchError(Exception):
    """The function cannot start here (its runtime is missing, a provided function has no bootstrap)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def cpu_fraction(memory_mb: int) -> float:
    return min(memory_mb / MB_PER_VCPU, float(os.cpu_count() or 1))


def build_spec(
    fv: FunctionVersion,
    *,
    env_id: str,
    log_stream: str,
    credentials: Credentials,
    endpoint_url: str,
    isolated: bool,
    initialization_type: str = "on-demand",
    ca_dir: Path | None = None,
) -> SandboxSpec:
    """The sandbox for one environment of `fv`.

    `isolated` says whether the sandbox has its own root (paths like /var/task exist) or is a plain
    process that sees host paths. `ca_dir` (holding `ca.pem`) is the CA the SDKs must trust to reach
    Hearth over HTTPS.
    """
    runtime = runtime_for(fv.runtime)  # its own, or (HEARTH_RUNTIME_FALLBACK=nearest) a stand-in
    if runtime is None:
        raise LaunchError("Runtime.InvalidRuntime", f"The runtime {fv.runtime} is not installed on this host.")
    task_root = "/var/task" if isolated else str(fv.code_dir)
    runtime_src = RUNTIMES_DIR / runtime.kind if runtime.kind != "provided" else None
    runtime_dir = "/var/runtime" if isolated else str(runtime_src or "")
    sdk = SDK_MOUNT if isolated else str(SDK_DIR)

    env = _standard_env(fv, runtime, log_stream, credentials, endpoint_url, initialization_type)
    env.update(
        LAMBDA_TASK_ROOT=task_root,
        LAMBDA_RUNTIME_DIR=runtime_dir or "/var/runtime",
        PATH="/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin",
        LD_LIBRARY_PATH=f"/var/lang/lib:/lib64:/usr/lib64:{runtime_dir}:{runtime_dir}/lib:"
                        f"{task_root}:{task_root}/lib:/opt/lib",
    )
    mounts: list[tuple[Path, str]] = []
    if ca_dir is not None:
        ca_inside = CA_MOUNT if isolated else str(ca_dir)
        env.update(AWS_CA_BUNDLE=f"{ca_inside}/ca.pem", NODE_EXTRA_CA_CERTS=f"{ca_inside}/ca.pem")
        if isolated:
            mounts.append((ca_dir, CA_MOUNT))
    python_fork: PythonForkSpec | None = None
    restore_argv: tuple[str, ...] = ()
    if runtime.kind == "python":
        assert runtime.executable is not None and runtime.prefix is not None
        env["PYTHONPATH"] = f"{runtime_dir}:{sdk}"
        argv = [str(runtime.executable), "-I", f"{runtime_dir}/bootstrap.py"]
        python_fork = PythonForkSpec(bootstrap_path=RUNTIMES_DIR / "python" / "bootstrap.py",
                                     python_executable=runtime.executable)
        mounts.append((runtime.prefix, str(runtime.prefix)))
        mounts.append((SDK_DIR, SDK_MOUNT))
    elif runtime.kind == "nodejs":
        assert runtime.executable is not None
        # AWS's NODE_PATH, with the bundled SDK where AWS keeps its own: after the layers' packages.
        node_sdk = node_sdk_dir()
        sdk_path = "" if node_sdk is None else f"{NODE_SDK_MOUNT if isolated else node_sdk}:"
        env["NODE_PATH"] = (f"/opt/nodejs/node{runtime.version.split('.')[0]}/node_modules:"
                            f"/opt/nodejs/node_modules:{runtime_dir}/node_modules:{sdk_path}"
                            f"{runtime_dir}:{task_root}")
        if node_sdk is not None and isolated:
            mounts.append((node_sdk, NODE_SDK_MOUNT))
        argv = [str(runtime.executable), f"{runtime_dir}/bootstrap.mjs"]
        if node_sdk is not None and not isolated:
            argv += ["--esm-sdk", str(node_sdk)]  # ES modules ignore NODE_PATH: a resolve hook falls back to it
        if runtime.prefix and not str(runtime.prefix).startswith("/usr"):
            mounts.append((runtime.prefix, str(runtime.prefix)))
    else:
        bootstrap = _provided_bootstrap(fv, task_root, isolated)
        argv = [bootstrap]
    # Extensions (issue 16): only functions that use them take these paths; the others start as before.
    wrapper = fv.environment.get("AWS_LAMBDA_EXEC_WRAPPER")
    snapshot_module = ""
    if wrapper and runtime.kind in ("python", "nodejs"):
        # As AWS's bootstraps do: the wrapper is exec'd with the runtime's command as its arguments.
        argv = [wrapper if isolated else _host_opt_path(fv.layer_dirs, wrapper), *argv]
        if initialization_type == "snap-start" and isolated and python_fork is not None:
            # SnapStart (design.md, "Extensions and SnapStart"): the bootstrap the wrapper ends in
            # becomes the template itself, with the zygote's code mounted beside it.
            mounts.append((ZYGOTE, ZYGOTE_MOUNT))
            snapshot_module = ZYGOTE_MOUNT
        python_fork = None
    if has_extensions(fv.layer_dirs):
        launcher = _launcher_python(runtime)
        if launcher is None:
            raise LaunchError("Extension.LaunchError",
                              "External extensions need a Python 3.9 or later interpreter on this host.")
        if isolated:
            if launcher.prefix is not None and all(target != str(launcher.prefix) for _, target in mounts):
                mounts.append((launcher.prefix, str(launcher.prefix)))
            mounts.append((LAUNCHER, LAUNCHER_MOUNT))
        dirs: list[str] = [] if isolated else [
            arg for layer in fv.layer_dirs if (layer / "extensions").is_dir()
            for arg in ("--dir", str(layer / "extensions"))]
        if initialization_type == "snap-start" and isolated and (python_fork is not None or snapshot_module):
            # SnapStart (design.md, "Extensions and SnapStart"): the template is the runtime alone
            # (the zygote's fork, or the bootstrap an exec wrapper ends in); each clone starts the
            # extensions anew beside its restored runtime.
            restore_argv = (str(launcher.executable), "-I", "-S", LAUNCHER_MOUNT, "--restore")
        else:
            argv = [str(launcher.executable), "-I", "-S", LAUNCHER_MOUNT if isolated else str(LAUNCHER), *dirs,
                    "--", *argv]
            python_fork = None
    return SandboxSpec(
        env_id=env_id,
        argv=argv,
        env=env,
        code_dir=fv.code_dir,
        runtime_dir=runtime_src,
        opt_dirs=fv.layer_dirs,
        extra_ro_mounts=tuple(mounts),
        memory_mb=fv.memory_mb,
        cpu_fraction=cpu_fraction(fv.memory_mb),
        tmp_mb=fv.ephemeral_mb,
        python_fork=python_fork,
        workdir=task_root,
        network=NetworkRequest(fv.network_key, fv.name),
        restore_argv=restore_argv,
        snapshot_module=snapshot_module,
    )


def has_extensions(layer_dirs: tuple[Path, ...]) -> bool:
    """Whether the layers bring external extensions (anything in /opt/extensions)."""
    for layer in layer_dirs:
        ext_dir = layer / "extensions"
        if ext_dir.is_dir() and any(ext_dir.iterdir()):
            return True
    return False


def _host_opt_path(layer_dirs: tuple[Path, ...], path: str) -> str:
    """A path under /opt as a sandbox without its own root sees it: in the last layer that has it."""
    if not path.startswith("/opt/"):
        return path
    for layer in reversed(layer_dirs):
        candidate = layer / path.removeprefix("/opt/")
        if candidate.exists():
            return str(candidate)
    return path


def _launcher_python(runtime: RuntimeInfo) -> RuntimeInfo | None:
    """The interpreter that runs the extensions launcher: the function's own Python if it can."""
    if runtime.kind == "python" and _minor(runtime.version) >= 9:
        return runtime
    pythons = [info for info in installed_runtimes().values()
               if info.kind == "python" and info.executable is not None and _minor(info.version) >= 9]
    return max(pythons, key=lambda info: _minor(info.version), default=None)


def _minor(version: str) -> int:
    try:
        return int(version.split(".")[-1])
    except ValueError:
        return 0


def _provided_bootstrap(fv: FunctionVersion, task_root: str, isolated: bool) -> str:
    # AWS looks for the function's `bootstrap` first, then one shipped in a layer at /opt.
    if (fv.code_dir / "bootstrap").is_file():
        return f"{task_root}/bootstrap"
    for layer in reversed(fv.layer_dirs):
        if (layer / "bootstrap").is_file():
            return "/opt/bootstrap" if isolated else str(layer / "bootstrap")
    raise LaunchError(
        "Runtime.InvalidEntrypoint",
        "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
    )


def _standard_env(
    fv: FunctionVersion,
    runtime: RuntimeInfo,
    log_stream: str,
    credentials: Credentials,
    endpoint_url: str,
    initialization_type: str,
) -> dict[str, str]:
    # The function's own variables first: AWS's reserved names cannot be set by users (the control
    # plane refuses them), so the platform's values below always win.
    env = dict(fv.environment)
    env.update(
        _HANDLER=fv.handler,
        AWS_REGION=fv.region,
        AWS_DEFAULT_REGION=fv.region,
        AWS_EXECUTION_ENV=f"AWS_Lambda_{fv.runtime}",
        AWS_LAMBDA_FUNCTION_NAME=fv.name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fv.memory_mb),
        AWS_LAMBDA_FUNCTION_VERSION=fv.version,
        AWS_LAMBDA_INITIALIZATION_TYPE=initialization_type,
        AWS_LAMBDA_LOG_GROUP_NAME=fv.effective_log_group,
        AWS_LAMBDA_LOG_STREAM_NAME=log_stream,
        AWS_ACCESS_KEY_ID=credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=credentials.secret_access_key,
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
        TZ=":UTC",
        LANG="en_US.UTF-8",
    )
    if credentials.session_token:
        env["AWS_SESSION_TOKEN"] = credentials.session_token
    if fv.log_format == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if fv.application_log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = fv.application_log_level
    if runtime.kind == "python":
        env["PYTHONUNBUFFERED"] = "1"
    return env
