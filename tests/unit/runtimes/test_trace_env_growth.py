"""Both bootstraps pass the per-invocation trace header without growing the process's environment.

glibc's setenv(3) keeps every value it ever installed, so setting `_X_AMZN_TRACE_ID` through putenv on
each invocation leaks ~100-200 bytes per distinct header inside a long-lived environment. Each test
counts the process's native memory growth over 80,000 distinct headers (after 20,000 to warm up) with
the bootstrap's way and, as the control that shows the measurement sees the leak, with a plain
environment assignment; and checks the handler still sees the header where AWS's runtime shows it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from tests.unit.runtimes.harness import NODE_BOOTSTRAP, PY_BOOTSTRAP

WARM_UP, COUNT = 20_000, 100_000
MIB = 1 << 20

PY_SCRIPT = f"""
import json, os, subprocess, sys
sys.path.insert(0, {str(PY_BOOTSTRAP.parent)!r})
import bootstrap

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def put(value):
    if sys.argv[1] == "bootstrap":
        bootstrap._set_trace_id(value)
    else:
        os.environ["_X_AMZN_TRACE_ID"] = value

for i in range({WARM_UP}):
    put(f"Root=1-5759e988-bd862e3fe1be46a994272793{{i}};Parent=53995c3f42cd8ad8;Sampled=1")
before = resident()
for i in range({WARM_UP}, {COUNT}):
    put(f"Root=1-5759e988-bd862e3fe1be46a994272793{{i}};Parent=53995c3f42cd8ad8;Sampled=1")
grown = resident() - before
seen = [os.environ.get("_X_AMZN_TRACE_ID"), os.getenv("_X_AMZN_TRACE_ID"),
        dict(os.environ).get("_X_AMZN_TRACE_ID"),
        subprocess.run(["printenv", "_X_AMZN_TRACE_ID"], env=os.environ, capture_output=True, text=True).stdout.strip()]
put(None) if sys.argv[1] == "bootstrap" else os.environ.pop("_X_AMZN_TRACE_ID")
print(json.dumps({{"grown": grown, "seen": seen, "after_unset": "_X_AMZN_TRACE_ID" in os.environ}}))
"""

NODE_SCRIPT = f"""
import {{ execFileSync }} from "node:child_process";
import {{ installTraceEnv, setTraceId }} from {json.dumps(str(NODE_BOOTSTRAP.parent / "trace_env.mjs"))};
const mode = process.argv[2];
if (mode === "bootstrap") installTraceEnv();
// Native memory: resident set minus V8's own heap (whose garbage comes and goes with the collector).
const native = () => {{ global.gc(); const m = process.memoryUsage(); return m.rss - m.heapTotal; }};
const put = (v) => {{ if (mode === "bootstrap") setTraceId(v); else process.env._X_AMZN_TRACE_ID = v; }};
const header = (i) => `Root=1-5759e988-bd862e3fe1be46a994272793${{i}};Parent=53995c3f42cd8ad8;Sampled=1`;
for (let i = 0; i < {WARM_UP}; i++) put(header(i));
const before = native();
for (let i = {WARM_UP}; i < {COUNT}; i++) put(header(i));
const grown = native() - before;
const seen = [process.env._X_AMZN_TRACE_ID, "_X_AMZN_TRACE_ID" in process.env ? "in" : "not in",
  Object.keys(process.env).includes("_X_AMZN_TRACE_ID") ? "listed" : "not listed",
  {{ ...process.env }}._X_AMZN_TRACE_ID,
  execFileSync("printenv", ["_X_AMZN_TRACE_ID"], {{ encoding: "utf8" }}).trim()];
if (mode === "bootstrap") setTraceId(undefined); else delete process.env._X_AMZN_TRACE_ID;
console.log(JSON.stringify({{ grown, seen, after_unset: "_X_AMZN_TRACE_ID" in process.env }}));
"""

LAST = f"Root=1-5759e988-bd862e3fe1be46a994272793{COUNT - 1};Parent=53995c3f42cd8ad8;Sampled=1"


def _run(argv: list[str]) -> dict[str, object]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_python_bootstrap_sets_the_trace_header_without_growing_the_environment() -> None:
    fixed = _run([sys.executable, "-c", PY_SCRIPT, "bootstrap"])
    leaky = _run([sys.executable, "-c", PY_SCRIPT, "putenv"])
    assert leaky["grown"] > 4 * MIB  # type: ignore[operator]  # the control: the measurement sees the leak
    assert fixed["grown"] < 1 * MIB  # type: ignore[operator]
    assert fixed["seen"] == [LAST] * 4
    assert fixed["after_unset"] is False


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_bootstrap_sets_the_trace_header_without_growing_the_environment(tmp_path: object) -> None:
    script = f"{tmp_path}/trace.mjs"
    with open(script, "w") as f:
        f.write(NODE_SCRIPT)
    fixed = _run(["node", "--expose-gc", script, "bootstrap"])
    leaky = _run(["node", "--expose-gc", script, "setenv"])
    assert leaky["grown"] > 4 * MIB  # type: ignore[operator]
    assert fixed["grown"] < 1 * MIB  # type: ignore[operator]
    assert fixed["seen"] == [LAST, "in", "listed", LAST, LAST]
    assert fixed["after_unset"] is False
