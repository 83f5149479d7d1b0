"""IAM over boto3: entities, policies, errors with AWS's texts, keys verified at once, enforcement."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.harness import (
    ACCESS_KEY,
    ACCOUNT,
    LAMBDA_TRUST,
    OTHER_ACCOUNT,
    SECRET_KEY,
    HearthServer,
    make_zip,
)

pytestmark = pytest.mark.integration

EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _client(server: HearthServer, service: str, key: dict[str, str]) -> Any:
    return boto3.client(service, endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                        aws_session_token=key.get("SessionToken"), config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def iam(server: HearthServer) -> Any:
    return server.client("iam")


def test_terraform_start_up_sequence(server: HearthServer, iam: Any) -> None:
    # Terraform's AWS provider: who am I, then a role's create / read / read-policies / delete.
    ident = server.client("sts").get_caller_identity()
    assert ident["Account"] == ACCOUNT and ident["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    name = _name("tf-role")
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST, Description="tf")["Role"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{name}" and created["RoleId"].startswith("AROA")
    role = iam.get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"] == json.loads(LAMBDA_TRUST)
    assert role["MaxSessionDuration"] == 3600 and role["Path"] == "/"
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    lam = server.client("lambda")
    if hasattr(lam, "get_function_code_signing_config"):
        try:
            lam.get_function_code_signing_config(FunctionName="not-there")
        except ClientError as exc:
            # Another engineer's code answers it; until then the operation may be unknown.
            assert exc.response["Error"]["Code"] in ("ResourceNotFoundException", "UnknownOperationException")
    iam.delete_role(RoleName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_role(RoleName=name)
    assert _error(exc) == ("NoSuchEntity", f"The role with name {name} cannot be found.", 404)


def test_entity_errors_have_aws_texts(iam: Any) -> None:
    name = _name("user")
    iam.create_user(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName=name)
    assert _error(exc) == ("EntityAlreadyExists", f"User with name {name} already exists.", 409)
    with pytest.raises(ClientError) as exc:
        iam.get_user(UserName="non-existent-user")
    assert _error(exc) == ("NoSuchEntity", "The user with name non-existent-user cannot be found.", 404)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=name)
    assert _error(exc)[0] == "DeleteConflict" and _error(exc)[2] == 409
    iam.delete_user_policy(UserName=name, PolicyName="p")
    for _ in range(2):
        iam.create_access_key(UserName=name)
    with pytest.raises(ClientError) as exc:
        iam.create_access_key(UserName=name)
    assert _error(exc) == ("LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2", 409)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


@pytest.mark.parametrize(("document", "reason"), [
    ("{not json", "This policy contains invalid Json"),
    (_doc({"Effect": "Allow", "Action": "s3GetObject", "Resource": "*"}),
     "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (_doc({"Effect": "Allow", "Action": "s3:GetObject"}), "Policy statement must contain resources."),
    (_doc({"Effect": "Allow", "Resource": "*"}), "Policy statement must contain actions."),
    (_doc({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}), "Syntax errors in policy."),
    (json.dumps({"Version": "2099-01-01", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
     "The policy failed legacy parsing"),
    (_doc({"Sid": "a", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
          {"Sid": "a", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
     "Statement IDs (SID) in a single policy must be unique."),
])
def test_malformed_policy_documents(iam: Any, document: str, reason: str) -> None:
    with pytest.raises(ClientError) as exc:
        iam.create_policy(PolicyName=_name("bad"), PolicyDocument=document)
    assert _error(exc) == ("MalformedPolicyDocument", reason, 400)


def test_trust_policy_refuses_resource(iam: Any) -> None:
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=_name("r"), AssumeRolePolicyDocument=_doc(
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole",
             "Resource": "*"}))
    assert _error(exc) == ("MalformedPolicyDocument", "Has prohibited field Resource.", 400)


def test_managed_policy_versions_attach_and_delete_conflicts(iam: Any) -> None:
    name = _name("pol")
    arn = iam.create_policy(PolicyName=name, PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}))["Policy"]["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    v2 = iam.create_policy_version(PolicyArn=arn, SetAsDefault=True, PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"]
    got = iam.get_policy_version(PolicyArn=arn, VersionId="v2")["PolicyVersion"]
    assert got["Document"]["Statement"][0]["Action"] == "sqs:*"
    with pytest.raises(ClientError) as exc:
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    assert _error(exc) == ("DeleteConflict", "Cannot delete the default version of a policy.", 409)
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    with pytest.raises(ClientError) as exc:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    assert _error(exc)[0] == "LimitExceeded"
    role = _name("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=EC2_TRUST)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=role)
    assert _error(exc) == ("DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn + "123")
    assert _error(exc) == ("NoSuchEntity", f"Policy {arn}123 does not exist or is not attachable.", 404)
    with pytest.raises(ClientError) as exc:
        iam.attach_role_policy(RoleName=role, PolicyArn="longpolicynamebutnoarn")
    assert _error(exc) == ("ValidationError", "Invalid ARN:  Could not be parsed!", 400)
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.delete_role(RoleName=role)
    with pytest.raises(ClientError) as exc:
        iam.delete_policy(PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/non-existent-policy")
    assert _error(exc) == ("NoSuchEntity", f"Policy arn:aws:iam::{ACCOUNT}:policy/non-existent-policy was not found.",
                           404)


def test_aws_managed_policies_come_with_their_documents(iam: Any) -> None:
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    assert policy["PolicyName"] == "AWSLambdaBasicExecutionRole" and policy["Path"] == "/service-role/"
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    assert set(doc["Statement"][0]["Action"]) >= {"logs:CreateLogStream", "logs:PutLogEvents"}
    names = {p["PolicyName"] for p in iam.get_paginator("list_policies").paginate(Scope="AWS").build_full_result()
             ["Policies"]}
    assert {"AWSLambdaSQSQueueExecutionRole", "AWSLambdaDynamoDBExecutionRole", "AmazonS3ReadOnlyAccess",
            "AdministratorAccess", "AWSXRayDaemonWriteAccess"} <= names


def test_groups_instance_profiles_tags_and_service_linked_roles(iam: Any) -> None:
    user, group = _name("u"), _name("g")
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [user]
    with pytest.raises(ClientError) as exc:
        iam.delete_group(GroupName=group)
    assert _error(exc)[0] == "DeleteConflict"
    iam.remove_user_from_group(GroupName=group, UserName=user)
    iam.delete_group(GroupName=group)
    iam.delete_user(UserName=user)

    role, profile = _name("r"), _name("ip")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=EC2_TRUST, Tags=[{"Key": "team", "Value": "a"}])
    iam.tag_role(RoleName=role, Tags=[{"Key": "env", "Value": "dev"}])
    assert {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role)["Tags"]} == {"team": "a", "env": "dev"}
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    got = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=role)
    assert _error(exc) == ("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.",
                           409)
    iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role)
    iam.delete_instance_profile(InstanceProfileName=profile)
    iam.delete_role(RoleName=role)

    linked = iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")["Role"]
    assert linked["RoleName"] == "AWSServiceRoleForECS"
    assert linked["Path"] == "/aws-service-role/ecs.amazonaws.com/"
    with pytest.raises(ClientError) as exc:
        iam.create_service_linked_role(AWSServiceName="ecs.amazonaws.com")
    assert _error(exc)[0] == "InvalidInput"
    task = iam.delete_service_linked_role(RoleName="AWSServiceRoleForECS")["DeletionTaskId"]
    assert iam.get_service_linked_role_deletion_status(DeletionTaskId=task)["Status"] == "SUCCEEDED"


def test_service_linked_roles_follow_the_catalog(iam: Any) -> None:
    # Names, attached policies and suffix rules as AWS answers them (recorded in the conformance snapshots).
    role = iam.create_service_linked_role(AWSServiceName="eks.amazonaws.com")["Role"]["RoleName"]
    assert role == "AWSServiceRoleForAmazonEKS"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == [
        {"PolicyName": "AmazonEKSServiceRolePolicy",
         "PolicyArn": "arn:aws:iam::aws:policy/aws-service-role/AmazonEKSServiceRolePolicy"}]
    with pytest.raises(ClientError) as exc:
        iam.delete_role(RoleName=role)
    assert _error(exc) == ("UnmodifiableEntity", f"Cannot perform the operation on the protected role '{role}' - "
                           "this role is only modifiable by AWS", 400)
    iam.delete_service_linked_role(RoleName=role)
    with pytest.raises(ClientError) as exc:
        iam.create_service_linked_role(AWSServiceName="batch.amazonaws.com", CustomSuffix="x")
    assert _error(exc) == ("InvalidInput", "Custom suffix is not allowed for batch.amazonaws.com", 400)
    suffixed = iam.create_service_linked_role(AWSServiceName="lexv2.amazonaws.com", CustomSuffix="bot1")["Role"]
    assert suffixed["RoleName"] == "AWSServiceRoleForLexV2Bots_bot1"
    iam.delete_service_linked_role(RoleName=suffixed["RoleName"])
    with pytest.raises(ClientError) as exc:
        iam.get_service_linked_role_deletion_status(DeletionTaskId="task/unknown")
    assert _error(exc)[0] == "NoSuchEntity"


def test_trust_policy_effect_in_any_case(server: HearthServer, iam: Any) -> None:
    # CloudFormation templates that deploy on AWS write "ALLOW"; Lambda must still see the role as assumable.
    role = _name("upper")
    trust = _doc({"Effect": "ALLOW", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    name = _name("fn")
    server.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=arn,
                                            Handler="index.handler", Code={"ZipFile": make_zip({"index.py": ""})})
    server.client("lambda").delete_function(FunctionName=name)
    iam.delete_role(RoleName=role)


def _self_signed() -> tuple[str, str]:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key.decode()


def test_server_certificates(iam: Any) -> None:
    body, key = _self_signed()
    name = _name("cert")
    meta = iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body,
                                         PrivateKey=key)["ServerCertificateMetadata"]
    assert meta["Arn"] == f"arn:aws:iam::{ACCOUNT}:server-certificate/{name}"
    assert meta["ServerCertificateId"].startswith("ASCA") and meta["Expiration"].year == 2033
    got = iam.get_server_certificate(ServerCertificateName=name)["ServerCertificate"]
    assert got["CertificateBody"] == body.strip() and "PrivateKey" not in got
    assert name in [c["ServerCertificateName"] for c in iam.list_server_certificates()["ServerCertificateMetadataList"]]
    with pytest.raises(ClientError) as exc:
        iam.upload_server_certificate(ServerCertificateName=_name("bad"), CertificateBody="nope", PrivateKey=key)
    assert _error(exc)[0] == "MalformedCertificate"
    iam.delete_server_certificate(ServerCertificateName=name)
    with pytest.raises(ClientError) as exc:
        iam.get_server_certificate(ServerCertificateName=name)
    assert _error(exc) == ("NoSuchEntity", f"The Server Certificate with name {name} cannot be found.", 404)


def test_user_keys_are_judged_by_policies_and_deactivated_at_once(server: HearthServer, iam: Any) -> None:
    user = _name("dev")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sqs = _client(server, "sqs", key)
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="iam-denied")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert exc.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: sqs:CreateQueue on resource: "
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:iam-denied because no identity-based policy allows the sqs:CreateQueue "
        "action")
    iam.put_user_policy(UserName=user, PolicyName="own-queues", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:*:*:${aws:username}-*"},
        {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"}))
    url = sqs.create_queue(QueueName=f"{user}-q")["QueueUrl"]
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="someone-else")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as exc:
        sqs.delete_queue(QueueUrl=url)
    assert "with an explicit deny in an identity-based policy" in exc.value.response["Error"]["Message"]
    lam = _client(server, "lambda", key)
    with pytest.raises(ClientError) as exc:
        lam.list_functions()
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", key).get_caller_identity()
    assert _error(exc) == ("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert _client(server, "sts", key).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{user}"
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(ClientError) as exc:
        _client(server, "sts", key).get_caller_identity()
    assert _error(exc)[0] == "InvalidClientTokenId"
    server.client("sqs").delete_queue(QueueUrl=url)


def test_resource_policies_join_the_decision(server: HearthServer, iam: Any) -> None:
    # IAM User Guide, "Policy evaluation logic" and "Cross-account policy evaluation logic": in one account a
    # resource-based policy naming the user grants on its own and an explicit Deny in it wins; across accounts
    # both sides must allow (the other account's root has an identity side that allows everything).
    user = _name("rp")
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/{user}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    owner_sqs = server.client("sqs")
    url = owner_sqs.create_queue(QueueName=_name("rp-q"))["QueueUrl"]
    arn = owner_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs = _client(server, "sqs", key)
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="no policy allows it yet")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    owner_sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _doc(
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sqs:SendMessage", "Resource": arn},
        {"Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT}, "Action": "sqs:SendMessage", "Resource": arn})})
    sqs.send_message(QueueUrl=url, MessageBody="granted by the queue's policy")  # no identity policy at all
    with pytest.raises(ClientError) as exc:
        sqs.receive_message(QueueUrl=url)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"

    # Another account: its root reaches the queue only for what the policy grants.
    other = server.client("sqs", account=OTHER_ACCOUNT)
    other.send_message(QueueUrl=url, MessageBody="from the other account")
    with pytest.raises(ClientError) as exc:
        other.purge_queue(QueueUrl=url)
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    assert "because no resource-based policy allows the sqs:PurgeQueue action" in \
        exc.value.response["Error"]["Message"]
    bodies = {m["Body"] for m in owner_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                           WaitTimeSeconds=1).get("Messages", [])}
    assert bodies == {"granted by the queue's policy", "from the other account"}

    # An explicit Deny in the resource's policy beats the user's own Allow.
    iam.put_user_policy(UserName=user, PolicyName="all-sqs", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}))
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    owner_sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": _doc(
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}})})
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert "with an explicit deny in a resource-based policy" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:  # and the other account's grant is gone with the old policy
        other.send_message(QueueUrl=url, MessageBody="refused")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"

    # Topics: another account publishes once the topic's policy lets it.
    owner_sns = server.client("sns")
    topic = owner_sns.create_topic(Name=_name("rp-t"))["TopicArn"]
    other_sns = server.client("sns", account=OTHER_ACCOUNT)
    with pytest.raises(ClientError) as exc:
        other_sns.publish(TopicArn=topic, Message="refused")
    assert exc.value.response["Error"]["Code"] == "AuthorizationError"
    owner_sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, "Action": "sns:Publish",
         "Resource": topic}))
    assert other_sns.publish(TopicArn=topic, Message="allowed")["MessageId"]

    # Buckets: the bucket policy grants a user of the account reads of one prefix.
    s3 = server.client("s3")
    bucket = _name("rp-b")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="shared/a.txt", Body=b"shared")
    s3.put_object(Bucket=bucket, Key="private/b.txt", Body=b"private")
    s3.put_bucket_policy(Bucket=bucket, Policy=_doc(
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/shared/*"}))
    user_s3 = _client(server, "s3", key)
    assert user_s3.get_object(Bucket=bucket, Key="shared/a.txt")["Body"].read() == b"shared"
    with pytest.raises(ClientError) as exc:
        user_s3.get_object(Bucket=bucket, Key="private/b.txt")
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    owner_sqs.delete_queue(QueueUrl=url)


def test_simulate_policies_use_the_evaluator(iam: Any) -> None:
    role = _name("sim")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=EC2_TRUST)
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bucket"}))
    results = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", ActionNames=["s3:PutObject", "s3:GetObjectVersion"],
        ResourceArns=["arn:aws:s3:::bucket"])["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("s3:PutObject", "allowed"), ("s3:GetObjectVersion", "implicitDeny")]
    custom = iam.simulate_custom_policy(
        PolicyInputList=[_doc({"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                               "Condition": {"Bool": {"aws:SecureTransport": "true"}}})],
        ActionNames=["sqs:SendMessage"],
        ContextEntries=[{"ContextKeyName": "aws:SecureTransport", "ContextKeyValues": ["false"],
                         "ContextKeyType": "boolean"}])["EvaluationResults"]
    assert custom[0]["EvalDecision"] == "implicitDeny"
    iam.delete_role_policy(RoleName=role, PolicyName="p")
    iam.delete_role(RoleName=role)


def test_function_policy_grants_a_user_of_its_account(server: HearthServer, iam: Any) -> None:
    # A function policy naming a user of the function's own account grants it with no identity policy
    # (IAM User Guide, "Policy evaluation logic": a same-account resource-based policy may grant alone).
    user = _name("invoker")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    role = iam.create_role(RoleName=_name("fn-role"), AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]
    owner = server.client("lambda")
    name = _name("granted")
    owner.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=role["Arn"],
                          Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 7\n"})})
    owner.get_waiter("function_active_v2").wait(FunctionName=name)
    lam = _client(server, "lambda", key)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    owner.add_permission(FunctionName=name, StatementId="user", Action="lambda:InvokeFunction",
                         Principal=f"arn:aws:iam::{ACCOUNT}:user/{user}")
    assert lam.invoke(FunctionName=name)["Payload"].read() == b"7"
    with pytest.raises(ClientError) as exc:  # the statement grants invocation only
        lam.get_function(FunctionName=name)
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    owner.delete_function(FunctionName=name)
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=user)
    iam.delete_role(RoleName=role["RoleName"])


def test_create_function_needs_a_role_lambda_can_assume(server: HearthServer, iam: Any) -> None:
    lam = server.client("lambda")
    code = {"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})}
    message = "The role defined for the function cannot be assumed by Lambda."
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName=_name("f"), Runtime="python3.11", Handler="app.handler", Code=code,
                            Role=f"arn:aws:iam::{ACCOUNT}:role/does-not-exist")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert exc.value.response["Error"]["Message"] == message
    ec2_role = _name("ec2-only")
    arn = iam.create_role(RoleName=ec2_role, AssumeRolePolicyDocument=EC2_TRUST)["Role"]["Arn"]
    with pytest.raises(ClientError) as exc:
        lam.create_function(FunctionName=_name("f"), Runtime="python3.11", Handler="app.handler", Code=code,
                            Role=arn)
    assert exc.value.response["Error"]["Message"] == message
    iam.delete_role(RoleName=ec2_role)


def test_identities_survive_a_restart(fresh_server: HearthServer) -> None:
    fresh_server.start()
    iam = fresh_server.client("iam")
    iam.create_user(UserName="durable")
    key = iam.create_access_key(UserName="durable")["AccessKey"]
    iam.create_policy(PolicyName="durable", PolicyDocument=_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
    fresh_server.kill9()
    fresh_server.start()
    assert _client(fresh_server, "sts", key).get_caller_identity()["Arn"].endswith(":user/durable")
    assert fresh_server.client("iam").get_role(RoleName="lambda-role")["Role"]["RoleName"] == "lambda-role"


def test_service_specific_credentials_and_instance_profile_tags(server: HearthServer, iam: Any) -> None:
    unchecked = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                             aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                             config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    user = _name("git")
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as exc:
        iam.create_service_specific_credential(UserName=user, ServiceName="lambda.amazonaws.com")
    assert _error(exc) == ("NoSuchEntity", "No such service lambda.amazonaws.com is supported for Service Specific "
                                           "Credentials", 404)
    created = iam.create_service_specific_credential(UserName=user, ServiceName="codecommit.amazonaws.com")
    credential = created["ServiceSpecificCredential"]
    assert credential["ServiceUserName"] == f"{user}-at-{ACCOUNT}" and credential["Status"] == "Active"
    cid = credential["ServiceSpecificCredentialId"]
    listed = iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"]
    assert [c["ServiceSpecificCredentialId"] for c in listed] == [cid] and "ServicePassword" not in listed[0]
    assert iam.list_service_specific_credentials(UserName=user, ServiceName="cassandra.amazonaws.com")[
        "ServiceSpecificCredentials"] == []
    iam.update_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid, Status="Inactive")
    reset = iam.reset_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)
    assert reset["ServiceSpecificCredential"]["Status"] == "Inactive"
    assert reset["ServiceSpecificCredential"]["ServicePassword"] != credential["ServicePassword"]
    with pytest.raises(ClientError) as exc:
        iam.delete_user(UserName=user)
    assert _error(exc) == ("DeleteConflict", "Cannot delete entity, must remove referenced objects first.", 409)
    with pytest.raises(ClientError) as exc:
        unchecked.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId="not-an-id-with-dashes")
    assert _error(exc)[0] == "ValidationError"
    with pytest.raises(ClientError) as exc:
        unchecked.update_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid, Status="Bad")
    assert _error(exc) == ("ValidationError", "1 validation error detected: Value at 'status' failed to satisfy "
                                              "constraint: Member must satisfy enum value set", 400)
    with pytest.raises(ClientError) as exc:
        iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId="A" * 24)
    assert _error(exc) == ("NoSuchEntity", f"No such credential {'A' * 24} exists", 404)
    iam.delete_service_specific_credential(UserName=user, ServiceSpecificCredentialId=cid)
    iam.delete_user(UserName=user)

    profile = _name("ip")
    iam.create_instance_profile(InstanceProfileName=profile, Tags=[{"Key": "team", "Value": "a"}])
    iam.tag_instance_profile(InstanceProfileName=profile, Tags=[{"Key": "env", "Value": "dev"}])
    tags = iam.list_instance_profile_tags(InstanceProfileName=profile)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "dev"), ("team", "a")]
    iam.delete_instance_profile(InstanceProfileName=profile)


def test_simulating_a_group_and_get_user_as_a_role(server: HearthServer, iam: Any) -> None:
    group = _name("sim-g")
    arn = iam.create_group(GroupName=group)["Group"]["Arn"]
    iam.put_group_policy(GroupName=group, PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}))
    results = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["sqs:SendMessage", "sqs:DeleteQueue"])
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results["EvaluationResults"]} == {
        "sqs:SendMessage": "allowed", "sqs:DeleteQueue": "implicitDeny"}
    role = _name("who")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=_doc(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}))
    creds = server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="session")["Credentials"]
    with pytest.raises(ClientError) as exc:
        _client(server, "iam", creds).get_user()
    assert _error(exc) == ("ValidationError", "Must specify userName when calling with non-User credentials", 400)
