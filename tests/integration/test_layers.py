"""Layers through boto3: a function imports aws-lambda-powertools from a layer and logs with its
Lambda context; a later layer overrides a file of an earlier one; /opt/bin is on PATH."""

from __future__ import annotations

import base64
import io
import json
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import HearthServer, create_function, make_zip, wait_active

pytestmark = pytest.mark.integration

SITE = Path(sysconfig.get_paths()["purelib"])

POWERTOOLS_APP = """
from aws_lambda_powertools import Logger
logger = Logger(service="layered")

@logger.inject_lambda_context
def handler(event, context):
    logger.info("hello from powertools", extra={"order": event.get("order")})
    import aws_lambda_powertools
    return {"module": aws_lambda_powertools.__file__}
"""

OVERRIDE_APP = """
import shared, subprocess
def handler(event, context):
    tool = subprocess.run(["layer-tool"], capture_output=True, text=True).stdout.strip()
    return {"value": shared.VALUE, "opt": open("/opt/python/shared.py").read().strip(), "tool": tool}
"""


def site_packages_zip(*packages: str) -> bytes:
    """A layer archive with the given installed packages (dirs or modules) under python/."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in packages:
            path = SITE / package
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" in file.parts:
                    continue
                info = zipfile.ZipInfo(f"python/{file.relative_to(SITE)}", date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = (0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, file.read_bytes())
    return buf.getvalue()


def publish(lam: Any, name: str, content: bytes, **extra: Any) -> str:
    out = lam.publish_layer_version(LayerName=name, Content={"ZipFile": content}, **extra)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    return str(out["LayerVersionArn"])


def test_powertools_from_a_layer_logs_with_the_lambda_context(server: HearthServer) -> None:
    lam = server.client("lambda")
    arn = publish(lam, "powertools", site_packages_zip("aws_lambda_powertools", "jmespath", "typing_extensions.py"),
                  CompatibleRuntimes=["python3.11"], CompatibleArchitectures=["x86_64"])
    listed = lam.list_layers(CompatibleRuntime="python3.11")["Layers"]
    assert any(layer["LatestMatchingVersion"]["LayerVersionArn"] == arn for layer in listed)
    name = "powertools-fn"
    cfg = create_function(lam, name, {"app.py": POWERTOOLS_APP}, Layers=[arn], Timeout=30, MemorySize=256)
    assert cfg["Layers"][0]["Arn"] == arn and cfg["Layers"][0]["CodeSize"] > 0
    resp = lam.invoke(FunctionName=name, Payload=json.dumps({"order": 42}), LogType="Tail")
    body = json.loads(resp["Payload"].read())
    assert "FunctionError" not in resp, body
    assert body["module"].startswith("/opt/python/aws_lambda_powertools/")
    tail = base64.b64decode(resp["LogResult"]).decode()
    records = [json.loads(line) for line in tail.splitlines() if line.startswith("{") and "powertools" in line]
    assert records, tail
    record = records[0]
    assert record["message"] == "hello from powertools" and record["order"] == 42
    assert record["service"] == "layered" and record["function_name"] == name
    assert record["function_request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert record["function_arn"].endswith(f":function:{name}") and record["cold_start"] is True
    lam.delete_function(FunctionName=name)


def test_later_layer_wins_and_layer_changes_reach_new_environments(server: HearthServer) -> None:
    lam = server.client("lambda")
    first = publish(lam, "base", make_zip({"python/shared.py": "VALUE = 'first'\n",
                                           "bin/layer-tool": "#!/bin/sh\necho tool-from-first\n"},
                                          executable=("bin/layer-tool",)))
    second = publish(lam, "override", make_zip({"python/shared.py": "VALUE = 'second'\n"}))
    name = "override-fn"
    create_function(lam, name, {"app.py": OVERRIDE_APP}, Layers=[first, second])
    resp = lam.invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(resp["Payload"].read())
    assert body == {"value": "second", "opt": "VALUE = 'second'", "tool": "tool-from-first"}, body
    lam.update_function_configuration(FunctionName=name, Layers=[second, first])
    wait_active(lam, name)
    body = json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())
    assert body["value"] == "first"
    lam.delete_layer_version(LayerName="base", VersionNumber=1)  # the function keeps what it references
    lam.update_function_configuration(FunctionName=name, Timeout=10)
    wait_active(lam, name)
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read())["value"] == "first"
    lam.delete_function(FunctionName=name)
