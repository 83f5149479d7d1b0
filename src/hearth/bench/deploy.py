"""Deploy benchmark: `sam deploy` of the corpus's largest application, start to CREATE_COMPLETE.

It measures the wall time of the SAM CLI's deploy (packaging, change set, execution, waiting) and,
from the stack's own events, the time CloudFormation took to create the resources, against the
number of resources the transformed template holds (seconds per resource). Anchors: LocalStack
documents seconds for such a deploy, AWS minutes. It needs the SAM CLI (`./run setup` installs it in
`.tools/sam`) and the corpus beside the repository (`../shared/patterns`); without them it says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hearth.bench.servers import BENCH_KEY, start_hearth

APPLICATION = "lambda-esm-sqs-filters-sam"  # the corpus's largest application (by resources)
WARM_UP = "eventbridge-scheduled-lambda"  # deployed first: it creates SAM CLI's managed stack


def _repository() -> Path:
    return Path(__file__).resolve().parents[3]


def _corpus() -> Path | None:
    return next((p / "shared" / "patterns" for p in _repository().parents if (p / "shared" / "patterns").is_dir()),
                None)


def _sam() -> Path | None:
    local = _repository() / ".tools" / "sam" / "bin" / "sam"
    if local.exists():
        return local
    found = shutil.which("sam")
    return Path(found) if found else None


def _copy(corpus: Path, name: str, work: Path) -> Path:
    folder = work / name
    shutil.copytree(corpus / name, folder)
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    for template in folder.glob("*.y*ml"):
        text = re.sub(r"python3\.\d+", python, template.read_text())
        template.write_text(re.sub(r"nodejs\d+\.x", f"nodejs{node.lstrip('v').split('.')[0]}.x", text))
    return folder


def _deploy(sam: Path, folder: Path, name: str, url: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=BENCH_KEY[0], AWS_SECRET_ACCESS_KEY=BENCH_KEY[1],
               AWS_DEFAULT_REGION="us-east-1", SAM_CLI_TELEMETRY="0", AWS_CONFIG_FILE="/nonexistent",
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    template = next(folder.glob("template.y*ml")).name
    started = time.perf_counter()
    subprocess.run([str(sam), "deploy", "--template-file", template, "--stack-name", name, "--resolve-s3",
                    "--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND",
                    "--no-confirm-changeset", "--no-fail-on-empty-changeset", "--region", "us-east-1"],
                   cwd=folder, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def run() -> dict[str, Any]:
    import boto3

    corpus, sam = _corpus(), _sam()
    if corpus is None or sam is None:
        return {"skipped": "the SAM CLI (./run setup) or the corpus (../shared/patterns) is missing"}
    with tempfile.TemporaryDirectory(prefix="hearth-bench-deploy-") as tmp:
        work = Path(tmp)
        server, url = start_hearth(work)
        try:
            _deploy(sam, _copy(corpus, WARM_UP, work), WARM_UP, url)
            seconds = _deploy(sam, _copy(corpus, APPLICATION, work), APPLICATION, url)
            cfn = boto3.client("cloudformation", endpoint_url=url, region_name="us-east-1",
                               aws_access_key_id=BENCH_KEY[0], aws_secret_access_key=BENCH_KEY[1])
            resources = cfn.list_stack_resources(StackName=APPLICATION)["StackResourceSummaries"]
            events = cfn.describe_stack_events(StackName=APPLICATION)["StackEvents"]
            stack_events = [e for e in events if e["ResourceType"] == "AWS::CloudFormation::Stack"]
            begun = min(e["Timestamp"] for e in stack_events if e["ResourceStatus"] == "CREATE_IN_PROGRESS")
            done = max(e["Timestamp"] for e in stack_events if e["ResourceStatus"] == "CREATE_COMPLETE")
        finally:
            server.stop()
    engine_s = (done - begun).total_seconds()
    return {"application": APPLICATION, "resources": len(resources), "sam_deploy_s": seconds,
            "create_s": engine_s, "create_s_per_resource": engine_s / max(1, len(resources)),
            "sam_deploy_s_per_resource": seconds / max(1, len(resources))}
