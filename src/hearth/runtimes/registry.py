"""Which AWS runtime ids this host can run, and with which interpreter.

It owns the mapping from an AWS runtime id (`python3.11`, `nodejs20.x`, `provided.al2023`) to an
executable on this host. It never starts anything but a version probe.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RuntimeKind = Literal["python", "nodejs", "provided"]

# Runtime ids AWS accepts in CreateFunction (botocore's Runtime enum has more, deprecated ones too;
# those are rejected by the provider with AWS's deprecation message).
PYTHON_IDS = tuple(f"python3.{minor}" for minor in range(8, 15))
NODE_IDS = tuple(f"nodejs{major}.x" for major in (16, 18, 20, 22, 24))
PROVIDED_IDS = ("provided", "provided.al2", "provided.al2023")
RUNTIMES_DIR = Path(__file__).resolve().parent
FALLBACK_ENV = "HEARTH_RUNTIME_FALLBACK"


@dataclass(frozen=True)
class RuntimeInfo:
    runtime_id: str
    kind: RuntimeKind
    executable: Path | None  # the interpreter; None for `provided` (the function brings its own)
    version: str
    prefix: Path | None = None  # the interpreter's installation directory (mounted read-only)


def _probe_python(exe: str) -> tuple[Path, str, Path] | None:
    try:
        out = subprocess.run(
            [exe, "-I", "-S", "-c",
             "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2]); print(sys.base_prefix)"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out[0]).resolve(), out[1], Path(out[2]).resolve()


def _python_candidates(minor: str) -> list[str]:
    name = f"python{minor}"
    found: list[str] = []
    exe = shutil.which(name)
    if exe:
        found.append(exe)
    for pattern in (f"/usr/bin/{name}", f"/usr/local/bin/{name}",
                    os.path.expanduser(f"~/.pyenv/versions/{minor}*/bin/{name}")):
        found.extend(sorted(glob.glob(pattern)))
    return found


def _find_python(runtime_id: str) -> RuntimeInfo | None:
    minor = runtime_id.removeprefix("python")
    for candidate in _python_candidates(minor):
        probed = _probe_python(candidate)
        if probed and probed[1] == minor:
            return RuntimeInfo(runtime_id, "python", probed[0], minor, probed[2])
    return None


def _find_node() -> RuntimeInfo | None:
    node = shutil.which("node")
    if not node:
        return None
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                                 check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.", version)
    if not match:
        return None
    node_path = Path(node).resolve()
    return RuntimeInfo(f"nodejs{match.group(1)}.x", "nodejs", node_path, version.lstrip("v"), node_path.parent.parent)


@functools.cache
def installed_runtimes() -> dict[str, RuntimeInfo]:
    """Every runtime id this host can run. Probed once per process, every interpreter at once: the
    first CreateFunction of a new server waits for this (one interpreter start, not one per runtime)."""
    with ThreadPoolExecutor(len(PYTHON_IDS) + 1) as pool:
        pythons = list(pool.map(_find_python, PYTHON_IDS))
        node = pool.submit(_find_node).result()
    found = {info.runtime_id: info for info in pythons if info is not None}
    if node is not None:
        found[node.runtime_id] = node
    for runtime_id in PROVIDED_IDS:
        found[runtime_id] = RuntimeInfo(runtime_id, "provided", None, "")
    return found


def fallback_mode() -> Literal["none", "nearest"]:
    """HEARTH_RUNTIME_FALLBACK: `none` (the default: a runtime the host lacks fails clearly) or
    `nearest` (it runs on the nearest installed version of its language, and says so)."""
    value = os.environ.get(FALLBACK_ENV, "").strip().lower() or "none"
    if value == "nearest":
        return "nearest"
    if value != "none":
        raise ValueError(f"{FALLBACK_ENV}={value!r}: expected 'none' or 'nearest'")
    return "none"


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text))


def nearest_runtime(runtime_id: str) -> RuntimeInfo | None:
    """The installed runtime of `runtime_id`'s language whose version is nearest (the newer of two
    equally near): python3.14 -> python3.13, nodejs24.x -> nodejs22.x or nodejs20.x. None for other
    languages (`provided` brings its own) or when the language has no installed version."""
    if runtime_id.startswith("python3."):
        kind: RuntimeKind = "python"
    elif runtime_id.startswith("nodejs"):
        kind = "nodejs"
    else:
        return None
    wanted = _numbers(runtime_id)
    candidates = [info for info in installed_runtimes().values() if info.kind == kind]
    if not candidates or not wanted:
        return None

    def distance(info: RuntimeInfo) -> tuple[int, int]:
        have = _numbers(info.runtime_id)
        return abs(have[-1] - wanted[-1]), -have[-1]  # nearest first, then the newer one

    return min(candidates, key=distance)


def runtime_for(runtime_id: str) -> RuntimeInfo | None:
    """The runtime that runs `runtime_id` here: its own, else (with the fallback on) the nearest."""
    found = installed_runtimes().get(runtime_id)
    if found is None and fallback_mode() == "nearest":
        found = nearest_runtime(runtime_id)
    return found


def fallback_note(runtime_id: str) -> str | None:
    """The sentence an environment's INIT log and `hearth runtimes` show when `runtime_id` runs on
    another version; None when it runs on its own (or not at all)."""
    if runtime_id in installed_runtimes():
        return None
    stand_in = runtime_for(runtime_id)
    if stand_in is None:
        return None
    return (f"{runtime_id} is not installed on this host: running on {stand_in.runtime_id} "
            f"({stand_in.version}) instead ({FALLBACK_ENV}=nearest)")


def runtime_unavailable_reason(runtime_id: str) -> str | None:
    """None when `runtime_id` runs here; otherwise a sentence naming the runtimes that do."""
    if runtime_for(runtime_id) is not None:
        return None
    runtimes = installed_runtimes()
    names = ", ".join(sorted(runtimes))
    return f"The runtime {runtime_id} is not installed on this Hearth host. Installed runtimes: {names}."


# The AWS SDK for JavaScript v3 that AWS bundles in its nodejs18.x and later runtimes. `./run setup`
# installs it once (pins: nodejs/sdk/package.json) into the repository's .tools/node-sdk; every Node.js
# environment sees that one directory read-only. HEARTH_NODE_SDK_DIR names another `node_modules`.
NODE_SDK_ENV = "HEARTH_NODE_SDK_DIR"
NODE_SDK_DEFAULT = RUNTIMES_DIR.parents[2] / ".tools" / "node-sdk" / "node_modules"


def node_sdk_dir() -> Path | None:
    """The `node_modules` directory holding `@aws-sdk/*`, or None when set-up has not installed it
    (functions still start; only their imports of the SDK fail, as on a runtime without it)."""
    configured = os.environ.get(NODE_SDK_ENV)
    candidate = Path(configured) if configured else NODE_SDK_DEFAULT
    return candidate.resolve() if (candidate / "@aws-sdk").is_dir() else None


def node_sdk_version() -> str | None:
    """The installed version of the bundled SDK (that of @aws-sdk/client-sts), None when absent."""
    sdk = node_sdk_dir()
    if sdk is None:
        return None
    match = re.search(r'"version"\s*:\s*"([^"]+)"',
                      _read_text(sdk / "@aws-sdk" / "client-sts" / "package.json"))
    return match.group(1) if match else "unknown"


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
