"""AWS CDK against Hearth as a user runs it: `cdk bootstrap`, `cdk deploy` of a JavaScript app (a function
behind a REST API writing to a table, a bucket with autoDeleteObjects and a queue), a request through the
API, `cdk destroy`.

The CLI and construct library are the pinned ones `./run setup` installs in .tools/cdk (pins:
tests/integration/cdk/package.json; HEARTH_CDK_TOOLS names another directory). The CLI talks to Hearth
over HTTPS trusting Hearth's CA (`hearth env --https`): the bootstrap bucket's policy denies every
request whose `aws:SecureTransport` is false, as in AWS. Bootstrap, asset publishing and deployment go
through the bootstrap roles the CLI assumes (file-publishing, deploy, cfn-exec).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ACCESS_KEY, ACCOUNT, SECRET_KEY, HearthServer, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
APP = Path(__file__).with_name("cdk") / "app"
HTTPS_PORT = free_port()
QUALIFIER = "hnb659fds"  # the CLI's default bootstrap qualifier
STACK = "HearthCdkApp"


def cdk_tools() -> Path:
    return Path(os.environ.get("HEARTH_CDK_TOOLS") or REPO / ".tools" / "cdk").absolute()


@pytest.fixture(scope="module")
def cdk() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the AWS CDK CLI cannot run")
    cli = cdk_tools() / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), f"the AWS CDK CLI is missing at {cli}: ./run setup installs it in .tools/cdk"
    return cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    # The app's function asks for nodejs20.x; a host with another Node.js runs it on the nearest one.
    srv = HearthServer(tmp_path_factory.mktemp("hearth-cdk") / "data",
                       extra_env={"HEARTH_HTTPS_PORT": str(HTTPS_PORT), "HEARTH_RUNTIME_FALLBACK": "nearest"})
    srv.start()
    yield srv
    assert srv.stop() == 0


def _run(cdk: Path, server: HearthServer, app: Path, *args: str) -> str:
    ca = str(server.data_dir / "ca" / "ca.pem")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        # What `eval "$(hearth env --https)"` sets.
        AWS_ENDPOINT_URL=f"https://localhost:{HTTPS_PORT}", AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
        AWS_CA_BUNDLE=ca, NODE_EXTRA_CA_CERTS=ca,
        # No profile files of the machine's user; the app finds aws-cdk-lib where the CLI is.
        AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        NODE_PATH=str(cdk_tools() / "node_modules"), CDK_HOME=str(app.parent / "cdk-home"),
        # The machine reaches no host but Hearth: no version check, notices or telemetry. CDK_VALIDATION:
        # aws-cdk-lib's local template linting (seconds of CPU, nothing of Hearth's) is skipped.
        CDK_DISABLE_VERSION_CHECK="1", CDK_DISABLE_CLI_TELEMETRY="true", CDK_VALIDATION="false",
    )
    done = subprocess.run([str(cdk), *args, "--no-notices"], cwd=app, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"cdk {' '.join(args)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    return done.stdout + done.stderr


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.status, json.load(resp)


def test_bootstrap_deploy_invoke_destroy(cdk: Path, server: HearthServer, tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP, app)

    # Bootstrap: the CDKToolkit stack with its staging bucket, container repository, roles and version.
    _run(cdk, server, app, "bootstrap")  # no environment named: the CLI asks STS for the account
    cfn = server.client("cloudformation")
    toolkit = cfn.describe_stacks(StackName="CDKToolkit")["Stacks"][0]
    assert toolkit["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in toolkit["Outputs"]}
    assert outputs["BucketName"] == f"cdk-{QUALIFIER}-assets-{ACCOUNT}-us-east-1"
    repo = server.client("ecr").describe_repositories(repositoryNames=[outputs["ImageRepositoryName"]])
    assert repo["repositories"][0]["imageTagMutability"] == "IMMUTABLE"
    version = server.client("ssm").get_parameter(Name=f"/cdk-bootstrap/{QUALIFIER}/version")["Parameter"]["Value"]
    assert version == outputs["BootstrapVersion"]

    # Deploy: assets published to the staging bucket as the file-publishing role, the stack deployed
    # by CloudFormation as the cfn-exec role.
    _run(cdk, server, app, "deploy", "--require-approval", "never", "--outputs-file", str(tmp_path / "out.json"))
    deployed = json.loads((tmp_path / "out.json").read_text())[STACK]
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["RoleARN"] == f"arn:aws:iam::{ACCOUNT}:role/cdk-{QUALIFIER}-cfn-exec-role-{ACCOUNT}-us-east-1"
    staged = server.client("s3").list_objects_v2(Bucket=outputs["BucketName"])["Contents"]
    assert any(o["Key"].endswith(".zip") for o in staged), staged

    # A request through the API reaches the function, which writes to the table, bucket and queue.
    api = f"{server.endpoint}/_hearth/api/{deployed['ApiId']}/prod"
    status, body = _get(f"{api}/items?id=from-cdk")
    assert (status, body) == (200, {"id": "from-cdk", "path": "/items", "release": "first"})
    item = server.client("dynamodb").get_item(TableName=deployed["TableName"], Key={"id": {"S": "from-cdk"}})
    assert item["Item"] == {"id": {"S": "from-cdk"}}
    s3 = server.client("s3")
    stored = s3.get_object(Bucket=deployed["BucketName"], Key="requests/from-cdk.json")["Body"].read()
    assert json.loads(stored) == body
    sqs = server.client("sqs")
    messages = sqs.receive_message(QueueUrl=deployed["QueueUrl"], WaitTimeSeconds=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [body]
    sqs.delete_message(QueueUrl=deployed["QueueUrl"], ReceiptHandle=messages[0]["ReceiptHandle"])

    # A second deploy with a change updates the stack in place through a new change set (the CLI first
    # deletes the previous one by name).
    _run(cdk, server, app, "deploy", "--require-approval", "never", "-c", "release=second")
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert _get(f"{api}/items?id=again")[1]["release"] == "second"

    # Destroy. The bucket still holds the two requests' objects: autoDeleteObjects' custom resource
    # (CDK's handler, which sends its cfn-response to port 443 whatever the URL says) empties it first.
    assert s3.list_objects_v2(Bucket=deployed["BucketName"])["KeyCount"] == 2
    _run(cdk, server, app, "destroy", "--force")
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=STACK)
    with pytest.raises(ClientError, match="NoSuchBucket"):
        s3.list_objects_v2(Bucket=deployed["BucketName"])
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        server.client("dynamodb").describe_table(TableName=deployed["TableName"])
    # The toolkit stays, as `cdk destroy` leaves it in AWS.
    assert cfn.describe_stacks(StackName="CDKToolkit")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
