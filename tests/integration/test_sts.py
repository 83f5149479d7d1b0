"""STS over boto3: caller identities, AssumeRole's trust checks and options, session tokens, expiry."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import (
    ACCOUNT,
    LAMBDA_TRUST,
    OTHER_ACCOUNT,
    HearthServer,
    create_function,
    free_port,
    invoke_json,
)

pytestmark = pytest.mark.integration

# Sessions end 900x sooner on this module's server: a 900 s session lasts one second.
SCALE = 900.0
HTTPS_PORT = free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    srv = HearthServer(tmp_path_factory.mktemp("hearth-sts") / "data",
                       extra_env={"HEARTH_TEST_SESSION_TIME_SCALE": str(SCALE), "HEARTH_HTTPS_PORT": str(HTTPS_PORT)})
    srv.start()
    yield srv
    assert srv.stop() == 0


def _client(server: HearthServer, service: str, creds: dict[str, Any], *, https: bool = False) -> Any:
    endpoint = f"https://localhost:{HTTPS_PORT}" if https else server.endpoint
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds.get("SessionToken"), config=Config(retries={"max_attempts": 1}),
                        verify=str(server.data_dir / "ca" / "ca.pem") if https else None)


def _trust(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal,
                                 "Action": ["sts:AssumeRole", "sts:TagSession"]}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _role(server: HearthServer, trust: str, policy: dict[str, Any] | None = None, **kwargs: Any) -> str:
    iam = server.client("iam")
    name = f"role-{uuid.uuid4().hex[:8]}"
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kwargs)["Role"]["Arn"]
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    return arn


ALLOW_SQS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}


def test_caller_identity_of_root_user_and_assumed_role(server: HearthServer) -> None:
    sts = server.client("sts")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    iam = server.client("iam")
    iam.create_user(UserName="caller")
    key = iam.create_access_key(UserName="caller")["AccessKey"]
    user_id = _client(server, "sts", key).get_caller_identity()
    assert user_id["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/caller" and user_id["UserId"].startswith("AIDA")
    arn = _role(server, _trust({"AWS": ACCOUNT}))
    assumed = sts.assume_role(RoleArn=arn, RoleSessionName="who")
    name = arn.rsplit("/", 1)[1]
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/who"
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    ident = _client(server, "sts", creds).get_caller_identity()
    assert ident["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert ident["UserId"] == assumed["AssumedRoleUser"]["AssumedRoleId"]


def test_trust_policy_decides_who_may_assume(server: HearthServer) -> None:
    iam = server.client("iam")
    iam.create_user(UserName="stranger")
    key = iam.create_access_key(UserName="stranger")["AccessKey"]
    arn = _role(server, _trust({"Service": "lambda.amazonaws.com"}))
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", key).assume_role(RoleArn=arn, RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/stranger is not authorized to perform: sts:AssumeRole on resource: {arn}")
    # Another account's root may assume a role whose trust policy names that account.
    cross = _role(server, _trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}))
    other = server.client("sts", account=OTHER_ACCOUNT)
    assert other.assume_role(RoleArn=cross, RoleSessionName="x1")["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/")
    with pytest.raises(ClientError) as exc:
        other.assume_role(RoleArn=arn, RoleSessionName="x1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_external_id_duration_tags_and_arn_validation(server: HearthServer) -> None:
    sts = server.client("sts")
    arn = _role(server, _trust({"AWS": ACCOUNT}, {"StringEquals": {"sts:ExternalId": "secret-1"}}))
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="secret-1")["Credentials"]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="secret-1", DurationSeconds=7200)
    assert exc.value.response["Error"] == {
        "Type": "Sender", "Code": "ValidationError",
        "Message": "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="secret-1",
                        Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}])
    assert exc.value.response["Error"]["Message"] == ("Duplicate tag keys found. Please note that Tag keys are case "
                                                      "insensitive.")
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="s1", ExternalId="secret-1", Tags=[{"Key": "a", "Value": "1"}],
                        TransitiveTagKeys=["b"])
    assert exc.value.response["Error"]["Message"] == ("The specified transitive tag key must be included in the "
                                                      "requested tags.")
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn="nothing-valid-in-here", RoleSessionName="s1")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert exc.value.response["Error"]["Message"] == "nothing-valid-in-here is invalid"
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=arn, RoleSessionName="Session1:2")
    assert exc.value.response["Error"]["Code"] == "ValidationError"


def test_session_policy_and_tags_limit_the_session(server: HearthServer) -> None:
    arn = _role(server, _trust({"AWS": ACCOUNT}), ALLOW_SQS)
    only_list = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]})
    creds = server.client("sts").assume_role(RoleArn=arn, RoleSessionName="narrow", Policy=only_list)["Credentials"]
    sqs = _client(server, "sqs", creds)
    sqs.list_queues()
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="not-in-session-policy")
    assert "because no session policy allows the sqs:CreateQueue action" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        server.client("sts").assume_role(RoleArn=arn, RoleSessionName="bad", Policy='{"Statement": 1')
    assert exc.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_session_token_is_required_and_expires(server: HearthServer) -> None:
    iam = server.client("iam")
    iam.create_user(UserName="tokens")
    iam.put_user_policy(UserName="tokens", PolicyName="p", PolicyDocument=json.dumps(ALLOW_SQS))
    key = iam.create_access_key(UserName="tokens")["AccessKey"]
    session = _client(server, "sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    assert session["AccessKeyId"].startswith("ASIA")
    _client(server, "sqs", session).list_queues()
    with pytest.raises(ClientError) as exc:
        _client(server, "sqs", {**session, "SessionToken": None}).list_queues()
    assert exc.value.response["Error"]["Code"] in ("InvalidClientTokenId", "UnrecognizedClientException")
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", session).get_session_token()
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    # 900 s at this server's scale is one second: wait for the expiry to be answered.
    deadline = time.monotonic() + 30
    while True:
        try:
            _client(server, "sts", session).get_caller_identity()
        except ClientError as exc2:
            assert exc2.response["Error"] == {"Type": "Sender", "Code": "ExpiredToken",
                                              "Message": "The security token included in the request is expired"}
            break
        assert time.monotonic() < deadline, "the session never expired"
        time.sleep(0.2)


def test_deleting_the_role_ends_its_sessions(server: HearthServer) -> None:
    arn = _role(server, _trust({"AWS": ACCOUNT}), ALLOW_SQS)
    creds = server.client("sts").assume_role(RoleArn=arn, RoleSessionName="gone",
                                            DurationSeconds=3600)["Credentials"]
    _client(server, "sts", creds).get_caller_identity()
    iam = server.client("iam")
    name = arn.rsplit("/", 1)[1]
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", creds).get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_https_with_the_local_ca_makes_secure_transport_true(server: HearthServer) -> None:
    iam = server.client("iam")
    iam.create_user(UserName="tls-only")
    iam.put_user_policy(UserName="tls-only", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]}))
    key = iam.create_access_key(UserName="tls-only")["AccessKey"]
    with pytest.raises(ClientError) as exc:
        _client(server, "sqs", key).list_queues()
    assert "with an explicit deny in an identity-based policy" in exc.value.response["Error"]["Message"]
    _client(server, "sqs", key, https=True).list_queues()
    assert _client(server, "sts", key, https=True).get_caller_identity()["Arn"].endswith(":user/tls-only")


SECURE_PROBE = """
import os
import boto3

def handler(event, context):
    queues = boto3.client("sqs").list_queues()
    return {"endpoint": os.environ["AWS_ENDPOINT_URL"], "ca": os.environ.get("AWS_CA_BUNDLE"),
            "queues": len(queues.get("QueueUrls", []))}
"""


def test_functions_reach_hearth_over_https(server: HearthServer) -> None:
    iam = server.client("iam")
    iam.create_role(RoleName="tls-fn", AssumeRolePolicyDocument=LAMBDA_TRUST)
    iam.put_role_policy(RoleName="tls-fn", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]}))
    lam = server.client("lambda")
    create_function(lam, "tls-fn", {"app.py": SECURE_PROBE}, Role=f"arn:aws:iam::{ACCOUNT}:role/tls-fn", Timeout=30)
    resp, body = invoke_json(lam, "tls-fn")
    assert "FunctionError" not in resp, body
    assert body["endpoint"].startswith("https://") and body["ca"].endswith("/ca.pem")


def test_federation_tokens_are_limited_to_their_session_policy(server: HearthServer) -> None:
    root_token = server.client("sts").get_federation_token(Name="fed-root", DurationSeconds=3600)
    assert root_token["FederatedUser"] == {"FederatedUserId": f"{ACCOUNT}:fed-root",
                                           "Arn": f"arn:aws:sts::{ACCOUNT}:federated-user/fed-root"}
    assert root_token["PackedPolicySize"] == 0
    iam = server.client("iam")
    user = f"fed-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sqs:*", "sts:GetFederationToken"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    user_sts = _client(server, "sts", key)
    only_list = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]})
    # 129,600 s is 144 s on this module's accelerated clock.
    token = user_sts.get_federation_token(Name="fed-user", Policy=only_list, DurationSeconds=129600)
    creds = token["Credentials"]
    ident = _client(server, "sts", creds).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/fed-user"
    assert ident["UserId"] == f"{ACCOUNT}:fed-user"
    sqs = _client(server, "sqs", creds)
    sqs.list_queues()
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="fed-not-allowed")
    assert "because no session policy allows the sqs:CreateQueue action" in exc.value.response["Error"]["Message"]
    bare = user_sts.get_federation_token(Name="fed-bare", DurationSeconds=129600)["Credentials"]
    with pytest.raises(ClientError) as exc:  # no session policy: no permissions at all
        _client(server, "sqs", bare).list_queues()
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", creds).get_federation_token(Name="fed-again")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    denied_user = f"fed-denied-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=denied_user)
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", iam.create_access_key(UserName=denied_user)["AccessKey"]).get_federation_token(
            Name="nope")
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{denied_user} is not authorized to perform: sts:GetFederationToken on "
        f"resource: arn:aws:sts::{ACCOUNT}:federated-user/nope because no identity-based policy allows the "
        "sts:GetFederationToken action")


def test_transitive_session_tags_pass_along_a_role_chain(server: HearthServer) -> None:
    second = _role(server, _trust({"AWS": ACCOUNT}))
    first = _role(server, _trust({"AWS": ACCOUNT}), {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": second}]},
        MaxSessionDuration=43200)
    creds = server.client("sts").assume_role(
        RoleArn=first, RoleSessionName="s1", DurationSeconds=43200, Tags=[{"Key": "Team", "Value": "a"}],
        TransitiveTagKeys=["Team"])["Credentials"]
    chained = _client(server, "sts", creds)
    for key in ("Team", "team"):
        with pytest.raises(ClientError) as exc:
            chained.assume_role(RoleArn=second, RoleSessionName="s2", Tags=[{"Key": key, "Value": "b"}])
        assert exc.value.response["Error"] == {
            "Type": "Sender", "Code": "InvalidParameterValue",
            "Message": "One of the specified transitive tag keys can't be set because it conflicts with a transitive "
                       "tag key from the calling session."}
    assert chained.assume_role(RoleArn=second, RoleSessionName="s2",
                               Tags=[{"Key": "Other", "Value": "c"}])["Credentials"]["SessionToken"]
