"""The SAM application corpus (../shared/patterns): deploy each application as its README says, with the
SAM CLI unchanged, and run the test its README describes (patterns.json holds them as steps).

The procedure is the corpus README's: copy the application, swap runtimes the host lacks for the
host's own, `sam build` where asked, `sam deploy --resolve-s3 …`, read the outputs and resources, wait
for the event source mappings, then run the steps in order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.integration.harness import ACCESS_KEY, SECRET_KEY, HearthServer

REPO = Path(__file__).resolve().parents[2]
# shared/ lies beside the repository (CI's clone, the main work tree) or beside a folder of work trees.
CORPUS = next((p / "shared" / "patterns" for p in REPO.parents if (p / "shared" / "patterns").is_dir()),
              REPO.parent / "shared" / "patterns")


def sam_cli() -> Path | None:
    """The SAM CLI `./run setup` installs in its own virtualenv (its pins differ from Hearth's)."""
    for candidate in (os.environ.get("HEARTH_SAM_CLI"), REPO / ".tools" / "sam" / "bin" / "sam"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    found = shutil.which("sam")
    return Path(found) if found else None


def recipes() -> dict[str, dict[str, Any]]:
    if not (CORPUS / "patterns.json").exists():
        return {}
    data = json.loads((CORPUS / "patterns.json").read_text())
    return {p["name"]: {**p, "_deploy": data["deploy"], "_limits": data["limits_s"]} for p in data["patterns"]}


def host_runtimes() -> tuple[str, str]:
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return python, f"nodejs{node.lstrip('v').split('.')[0]}.x"


def swap_runtimes(folder: Path) -> None:
    """The corpus README's step 2: runtimes the host cannot run become the host's own, in the copy only."""
    python, node = host_runtimes()
    for template in list(folder.glob("template.y*ml")) + list(folder.glob("*.yaml")):
        text = template.read_text()
        text = re.sub(r"python3\.\d+", python, text)
        text = re.sub(r"nodejs\d+\.x", node, text)
        template.write_text(text)


class StepFailed(AssertionError):
    pass


class Application:
    """One application of the corpus, deployed on one Hearth server."""

    def __init__(self, server: HearthServer, name: str, recipe: dict[str, Any], workdir: Path) -> None:
        self.server = server
        self.name = name
        self.recipe = recipe
        self.folder = workdir / name
        self.outputs: dict[str, str] = {}
        self.resources: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        self.parameters = {k: v.replace("{stack}", name) for k, v in (recipe.get("parameters") or {}).items()}

    # -- deploying ----------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ENDPOINT_URL=self.server.endpoint, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1", SAM_CLI_TELEMETRY="0",
                   AWS_CONFIG_FILE="/nonexistent",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        return env

    def deploy(self, sam: Path) -> None:
        shutil.copytree(CORPUS / self.name, self.folder)
        swap_runtimes(self.folder)
        limits = self.recipe["_limits"]
        template = self.recipe["template"]
        if self.recipe.get("build"):
            self._run([str(sam), "build", "--template-file", template], limits["build"])
            template = ".aws-sam/build/template.yaml"
        command = [str(sam), "deploy", "--template-file", template, "--stack-name", self.name, "--resolve-s3",
                   "--capabilities", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND",
                   "--no-confirm-changeset", "--no-fail-on-empty-changeset", "--region", "us-east-1"]
        if self.parameters:
            command += ["--parameter-overrides", *(f"{k}={v}" for k, v in self.parameters.items())]
        self._run(command, limits["deploy"])
        cfn = self.server.client("cloudformation")
        stack = cfn.describe_stacks(StackName=self.name)["Stacks"][0]
        if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise StepFailed(f"{self.name}: {stack['StackStatus']}")
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        summaries = cfn.list_stack_resources(StackName=self.name)["StackResourceSummaries"]
        self.resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        lam = self.server.client("lambda")
        deadline = time.monotonic() + 60
        for summary in summaries:
            if summary["ResourceType"] != "AWS::Lambda::EventSourceMapping":
                continue
            while lam.get_event_source_mapping(UUID=summary["PhysicalResourceId"])["State"] != "Enabled":
                if time.monotonic() > deadline:
                    raise StepFailed(f"mapping {summary['LogicalResourceId']} never Enabled")
                time.sleep(0.2)

    def _run(self, command: list[str], timeout: float) -> None:
        done = subprocess.run(command, cwd=self.folder, env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise StepFailed(f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
                             f"{done.stderr[-4000:]}")

    # -- steps --------------------------------------------------------------------------------------------

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            def one(match: re.Match[str]) -> str:
                kind, _, key = match.group(1).partition(":")
                table = {"output": self.outputs, "resource": self.resources, "var": self.variables,
                         "param": self.parameters}.get(kind)
                if table is None or key not in table:
                    return match.group(0)
                return str(table[key])
            return re.sub(r"\{((?:output|resource|var|param):[^}]+)\}", one, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def run_steps(self) -> None:
        for index, step in enumerate(self.recipe["steps"]):
            (kind, spec), = step.items()
            try:
                getattr(self, f"step_{kind}")(self.fill(spec))
            except StepFailed as exc:
                raise StepFailed(f"{self.name} step {index + 1} ({kind}): {exc}") from None

    def _file(self, name: str) -> str:
        return (self.folder / name).read_text()

    @staticmethod
    def _contains(text: str, wanted: str | list[str]) -> list[str]:
        return [w for w in ([wanted] if isinstance(wanted, str) else wanted) if w not in text]

    def _until(self, spec: dict[str, Any], check: Any, default_timeout: float = 30.0) -> None:
        deadline = time.monotonic() + float(spec.get("timeout_s", default_timeout))
        last = ""
        while True:
            try:
                problem = check()
            except Exception as exc:  # reported if it lasts
                problem = f"{type(exc).__name__}: {exc}"
            if not problem:
                return
            last = str(problem)
            if time.monotonic() > deadline:
                raise StepFailed(last[-3000:])
            time.sleep(0.5)

    def step_http(self, spec: dict[str, Any]) -> None:
        url = spec["url"]
        parsed = urlparse(url)
        host = parsed.netloc
        target = f"{self.server.endpoint}{parsed.path or '/'}" + (f"?{parsed.query}" if parsed.query else "")
        headers = dict(spec.get("headers") or {})
        headers["Host"] = host if not host.startswith("127.0.0.1") else headers.get("Host", host)
        body = spec.get("body")
        if "body_json" in spec:
            body = json.dumps(spec["body_json"])
        data = body.encode() if isinstance(body, str) else None
        if spec.get("sigv4"):
            request = AWSRequest(method=spec["method"], url=f"https://{host}{parsed.path or '/'}"
                                 + (f"?{parsed.query}" if parsed.query else ""), data=data, headers=headers)
            SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), spec["sigv4"], "us-east-1").add_auth(request)
            headers = dict(request.headers.items())
        wanted = spec.get("expect_status", 200)
        wanted = wanted if isinstance(wanted, list) else [wanted]

        def check() -> str | None:
            request = urllib.request.Request(target, data=data, method=spec["method"], headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, text = response.status, response.read().decode("utf-8", "replace")
                    got_headers = {k.lower(): v for k, v in response.headers.items()}
            except urllib.error.HTTPError as err:
                status, text, got_headers = err.code, err.read().decode("utf-8", "replace"), {}
            if status not in wanted:
                return f"status {status} (wanted {wanted}): {text[:1000]}"
            missing = self._contains(text, spec.get("expect_body_contains") or [])
            if missing:
                return f"body lacks {missing}: {text[:1000]}"
            for name, value in (spec.get("expect_headers") or {}).items():
                if value not in got_headers.get(name.lower(), ""):
                    return f"header {name} is {got_headers.get(name.lower())!r}, wanted {value!r}"
            return None

        self._until(spec, check, 30)

    def step_wait_logs(self, spec: dict[str, Any]) -> None:
        logs = self.server.client("logs")
        group = f"/aws/lambda/{spec['function']}"

        def check() -> str | None:
            events = logs.filter_log_events(logGroupName=group)["events"]
            text = "\n".join(e["message"] for e in events)
            missing = self._contains(text, spec["contains"])
            return f"log lacks {missing}; last lines: {text[-1500:]}" if missing else None

        self._until(spec, check, 60)

    def step_invoke(self, spec: dict[str, Any]) -> None:
        lam = self.server.client("lambda")
        answer = lam.invoke(FunctionName=spec["function"], InvocationType=spec.get("invocation_type",
                                                                                    "RequestResponse"),
                            Payload=json.dumps(spec.get("payload", {})).encode())
        payload = answer["Payload"].read().decode()
        if "expect_status" in spec and answer["StatusCode"] != spec["expect_status"]:
            raise StepFailed(f"status {answer['StatusCode']}")
        if "expect_error" in spec and bool(answer.get("FunctionError")) != spec["expect_error"]:
            raise StepFailed(f"FunctionError {answer.get('FunctionError')}: {payload[:1000]}")
        missing = self._contains(payload, spec.get("expect_contains") or [])
        if missing:
            raise StepFailed(f"payload lacks {missing}: {payload[:1000]}")

    def step_aws(self, spec: dict[str, Any]) -> None:
        client = self.server.client(spec["service"])
        time.sleep(float(spec.get("settle_s", 0)))

        def check() -> str | None:
            answer = getattr(client, spec["operation"])(**spec.get("params", {}))
            answer.pop("ResponseMetadata", None)
            for name, path in (spec.get("save") or {}).items():
                self.variables[name] = str(answer[path])
            subset = spec.get("expect_subset")
            if subset is not None and not _is_subset(subset, answer):
                return f"{answer} lacks {subset}"
            missing = self._contains(json.dumps(answer, default=str), spec.get("expect_contains") or [])
            return f"answer lacks {missing}: {answer}" if missing else None

        self._until(spec, check, float(spec.get("timeout_s", 1)))

    def step_dynamodb_get(self, spec: dict[str, Any]) -> None:
        ddb = self.server.client("dynamodb")

        def check() -> str | None:
            item = ddb.get_item(TableName=spec["table"], Key=spec["key"]).get("Item")
            missing = self._contains(json.dumps(item), spec.get("expect_contains") or [])
            return f"item {item} lacks {missing}" if missing or item is None else None

        self._until(spec, check, 10)

    def step_dynamodb_put(self, spec: dict[str, Any]) -> None:
        self.server.client("dynamodb").put_item(TableName=spec["table"], Item=spec["item"])

    def step_sqs_send(self, spec: dict[str, Any]) -> None:
        sqs = self.server.client("sqs")
        for i in range(1, int(spec.get("repeat", 1)) + 1):
            sqs.send_message(QueueUrl=spec["queue"], MessageBody=spec["body"].replace("{i}", str(i)))

    def step_sns_publish(self, spec: dict[str, Any]) -> None:
        message = self._file(spec["message_file"]) if "message_file" in spec else spec["message"]
        self.server.client("sns").publish(TopicArn=spec["topic"], Message=message)

    def step_events_put(self, spec: dict[str, Any]) -> None:
        entries = json.loads(self._file(spec["entries_file"])) if "entries_file" in spec else spec["entries"]
        answer = self.server.client("events").put_events(Entries=entries)
        if answer["FailedEntryCount"]:
            raise StepFailed(str(answer))

    def step_kinesis_put(self, spec: dict[str, Any]) -> None:
        data = self._file(spec["data_file"]) if "data_file" in spec else spec["data"]
        self.server.client("kinesis").put_record(StreamName=spec["stream"], PartitionKey=spec["partition_key"],
                                                 Data=data.encode())

    def step_s3_put(self, spec: dict[str, Any]) -> None:
        body = self._file(spec["body_file"]) if "body_file" in spec else spec.get("body", "")
        self.server.client("s3").put_object(Bucket=spec["bucket"], Key=spec["key"], Body=body.encode())


def _is_subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _is_subset(v, big[k]) for k, v in small.items())
    return bool(small == big)

