"""CloudFormation stacks through boto3 against a real server: create, update, roll back, change sets, delete."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ACCOUNT, ROLE, HearthServer, make_zip, wait_active

pytestmark = pytest.mark.integration

FUNCTION_SOURCE = ("import os\n\ndef handler(event, context):\n"
                   "    return {'echo': event, 'env': os.environ['GREETING']}\n")


@pytest.fixture
def cfn(server: HearthServer) -> Any:
    return server.client("cloudformation")


def _stack_name() -> str:
    return f"st-{uuid.uuid4().hex[:8]}"


def _wait(cfn: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"stack {name} still {stack['StackStatus']}"
        time.sleep(0.1)


def _reasons(cfn: Any, name: str) -> list[str]:
    return [f"{e['LogicalResourceId']} {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}"
            for e in cfn.describe_stack_events(StackName=name)["StackEvents"]]


def _app_template(queue_visibility: int = 30, extra_queue: bool = True, queue_name: str | None = None) -> str:
    resources: dict[str, Any] = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": queue_visibility,
                                                            **({"QueueName": queue_name} if queue_name else {})}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "${AWS::StackName} topic"}}},
        "Subscription": {"Type": "AWS::SNS::Subscription", "Properties": {
            "TopicArn": {"Ref": "Topic"}, "Protocol": "sqs", "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
            "RawMessageDelivery": True}},
        "Param": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Type": "String", "Value": {"Fn::Join": [",", [{"Ref": "Greeting"}, {"Fn::GetAtt": "Queue.QueueName"}]]}}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "RetentionInDays": {"Fn::FindInMap": ["Retention", {"Ref": "AWS::Region"}, "Days"]}}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.11", "Handler": "index.handler", "Role": ROLE, "Code": {"ZipFile": FUNCTION_SOURCE},
            "Environment": {"Variables": {"GREETING": {"Ref": "Greeting"}}},
            "MemorySize": {"Fn::If": ["Big", 512, 128]}}},
        "Permission": {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": "Function"}, "Action": "lambda:InvokeFunction", "Principal": "sns.amazonaws.com",
            "SourceArn": {"Ref": "Topic"}}},
    }
    if extra_queue:
        resources["Extra"] = {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Delete"}
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "an app",
        "Parameters": {"Greeting": {"Type": "String", "Default": "hello", "AllowedValues": ["hello", "hi"]},
                       "Size": {"Type": "String", "Default": "small"}},
        "Conditions": {"Big": {"Fn::Equals": [{"Ref": "Size"}, "big"]}},
        "Mappings": {"Retention": {"us-east-1": {"Days": 7}}},
        "Resources": resources,
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "Queue"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-queue"}}},
            "FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}},
            "Zone": {"Value": {"Fn::Select": [1, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]}},
        },
    })


def test_create_update_and_delete_an_application(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    stack_id = cfn.create_stack(StackName=name, TemplateBody=_app_template())["StackId"]
    assert stack_id.startswith(f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{name}/")
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["Zone"] == "us-east-1b"
    summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    resources = {r["LogicalResourceId"]: r for r in summaries}
    assert set(resources) == {"Queue", "Topic", "Subscription", "Param", "Logs", "Function", "Permission", "Extra"}
    assert all(r["ResourceStatus"] in ("CREATE_COMPLETE",) for r in resources.values())
    assert outputs["QueueUrl"] == resources["Queue"]["PhysicalResourceId"]
    exports = {e["Name"]: e for e in cfn.list_exports()["Exports"]}
    assert exports[f"{name}-queue"]["Value"] == outputs["QueueUrl"]
    assert exports[f"{name}-queue"]["ExportingStackId"] == stack_id

    # The resources are real: the function runs with its environment, the topic delivers to the queue.
    lam, sqs, sns, ssm = (server.client(s) for s in ("lambda", "sqs", "sns", "ssm"))
    function = resources["Function"]["PhysicalResourceId"]
    assert function.startswith(f"{name}-Function-")
    answer = json.loads(lam.invoke(FunctionName=function, Payload=b'{"a": 1}')["Payload"].read())
    assert answer == {"echo": {"a": 1}, "env": "hello"}
    sns.publish(TopicArn=resources["Topic"]["PhysicalResourceId"], Message="ping")
    got = sqs.receive_message(QueueUrl=outputs["QueueUrl"], WaitTimeSeconds=5)["Messages"]
    assert got[0]["Body"] == "ping"
    queue_name = outputs["QueueUrl"].rsplit("/", 1)[-1]
    parameter = ssm.get_parameter(Name=resources["Param"]["PhysicalResourceId"])["Parameter"]
    assert parameter["Value"] == f"hello,{queue_name}"

    # An update: one property in place, a parameter, one resource removed.
    cfn.update_stack(StackName=name, TemplateBody=_app_template(queue_visibility=45, extra_queue=False),
                     Parameters=[{"ParameterKey": "Greeting", "ParameterValue": "hi"}])
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "UPDATE_COMPLETE", _reasons(cfn, name)
    attrs = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == "45"
    answer = json.loads(lam.invoke(FunctionName=function, Payload=b"{}")["Payload"].read())
    assert answer["env"] == "hi"
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=resources["Extra"]["PhysicalResourceId"].rsplit("/", 1)[-1])

    with pytest.raises(ClientError) as err:
        cfn.update_stack(StackName=name, TemplateBody=_app_template(queue_visibility=45, extra_queue=False),
                         Parameters=[{"ParameterKey": "Greeting", "UsePreviousValue": True}])
    assert err.value.response["Error"]["Message"] == "No updates are to be performed."

    cfn.delete_stack(StackName=name)
    deadline = time.monotonic() + 60
    while True:
        summaries = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackId"] == stack_id]
        if summaries[0]["StackStatus"] == "DELETE_COMPLETE":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(ClientError) as err:
        cfn.describe_stacks(StackName=name)
    assert err.value.response["Error"]["Message"] == f"Stack with id {name} does not exist"
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=function)
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"


def test_a_failing_resource_rolls_the_stack_back(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    template = {"Resources": {
        "Good": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-good"}},
        "Bad": {"Type": "AWS::SQS::Queue", "DependsOn": "Good", "Properties": {"DelaySeconds": 9999}},
    }}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "DeletionTime" in stack  # the rollback deleted what the creation made
    failed = [e for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
              if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[0]["LogicalResourceId"] == "Bad" and "Resource handler returned message" in \
        failed[0]["ResourceStatusReason"]
    with pytest.raises(ClientError):
        server.client("sqs").get_queue_url(QueueName=f"{name}-good")
    # A resource made and then failing in a later step (its concurrency) is removed, not left behind.
    half = {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": f"{name}-half", "Runtime": "python3.11", "Handler": "index.handler", "Role": ROLE,
        "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"}, "ReservedConcurrentExecutions": 100000}}}}
    cfn.create_stack(StackName=name + "h", TemplateBody=json.dumps(half))
    assert _wait(cfn, name + "h")["StackStatus"] == "ROLLBACK_COMPLETE"
    with pytest.raises(ClientError):
        server.client("lambda").get_function(FunctionName=f"{name}-half")
    unsupported = {"Resources": {"Thing": {"Type": "AWS::Nope::Thing"}}}
    cfn.create_stack(StackName=name + "u", TemplateBody=json.dumps(unsupported), OnFailure="DO_NOTHING")
    stack = _wait(cfn, name + "u")
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert any("AWS::Nope::Thing is not supported by Hearth" in r for r in _reasons(cfn, name + "u"))


@pytest.mark.parametrize(("template", "message"), [
    ("{ not json", "Template format error: JSON not well-formed. (line 1, column 3)"),
    ("Resources: [1", "Template format error: YAML not well-formed."),
    ('{"Resources": {}}', "Template format error: At least one Resources member must be defined."),
    ('{"Resources": {"my-bad": {"Type": "AWS::SQS::Queue"}}}',
     "Template format error: Resource name my-bad is non alphanumeric."),
    ('{"Resources": {"A": {"Properties": {}}}}',
     "Template format error: [/Resources/A] Every Resources object must contain a Type member."),
    ('{"Resources": {"A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Missing"}}}}}',
     "Template format error: Unresolved resource dependencies [Missing] in the Resources block of the template"),
    ('{"Resources": {"A": {"Type": "AWS::SQS::Queue", "DependsOn": "B"}, '
     '"B": {"Type": "AWS::SQS::Queue", "DependsOn": "A"}}}', "Circular dependency between resources: [A, B]"),
    ('{"Parameters": {"P": {"Type": "String"}}, "Resources": {"A": {"Type": "AWS::SQS::Queue"}}}',
     "Parameters: [P] must have values"),
    ('{"Parameters": {"N": {"Type": "Number", "Default": "x"}}, "Resources": {"A": {"Type": "AWS::SQS::Queue"}}}',
     "Parameter 'N' must be a number."),
])
def test_template_errors_are_refused_before_anything_is_created(cfn: Any, template: str, message: str) -> None:
    with pytest.raises(ClientError) as err:
        cfn.create_stack(StackName=_stack_name(), TemplateBody=template)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert err.value.response["Error"]["Message"] == message


def test_change_sets_as_deploy_tools_use_them(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    with pytest.raises(ClientError) as err:
        cfn.describe_stacks(StackName=name)
    assert "does not exist" in err.value.response["Error"]["Message"]
    template = ("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                "      QueueName: !Sub '${AWS::StackName}-q'\n")
    created = cfn.create_change_set(StackName=name, ChangeSetName="one", ChangeSetType="CREATE", TemplateBody=template)
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    described = cfn.describe_change_set(ChangeSetName="one", StackName=name)
    assert described["ExecutionStatus"] == "AVAILABLE"
    assert [c["ResourceChange"]["Action"] for c in described["Changes"]] == ["Add"]
    cfn.execute_change_set(ChangeSetName=created["Id"])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    assert server.client("sqs").get_queue_url(QueueName=f"{name}-q")["QueueUrl"]
    # The executed change set stays, with how its execution ended.
    assert cfn.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    with pytest.raises(ClientError) as err:  # by name, a stack that is not there is named
        cfn.describe_change_set(StackName=f"{name}-missing", ChangeSetName="one")
    assert err.value.response["Error"]["Message"] == f"Stack [{name}-missing] does not exist"

    same = cfn.create_change_set(StackName=name, ChangeSetName="two", TemplateBody=template)
    described = cfn.describe_change_set(ChangeSetName=same["Id"])
    assert described["Status"] == "FAILED"
    assert described["StatusReason"] == ("The submitted information didn't contain changes. Submit different "
                                         "information to create a change set.")
    with pytest.raises(ClientError) as err:
        cfn.execute_change_set(ChangeSetName=same["Id"])
    assert err.value.response["Error"]["Code"] == "InvalidChangeSetStatus"
    # By name, a change set that is not there is already deleted (AWS CDK deletes its change set's name
    # before making it); a stack that is not there is an error.
    cfn.delete_change_set(StackName=name, ChangeSetName="two")
    cfn.delete_change_set(StackName=name, ChangeSetName="two")
    with pytest.raises(ClientError) as err:
        cfn.describe_change_set(ChangeSetName=same["Id"])
    assert err.value.response["Error"]["Code"] == "ChangeSetNotFound"
    with pytest.raises(ClientError) as err:
        cfn.delete_change_set(StackName=f"{name}-missing", ChangeSetName="two")
    assert err.value.response["Error"]["Message"] == f"Stack [{name}-missing] does not exist"

    renamed = template.replace("-q'", "-r'")
    change = cfn.create_change_set(StackName=name, ChangeSetName="three", TemplateBody=renamed)
    described = cfn.describe_change_set(ChangeSetName=change["Id"])
    assert described["Changes"][0]["ResourceChange"]["Replacement"] == "True"
    assert cfn.get_template(StackName=name)["TemplateBody"] == template
    cfn.execute_change_set(ChangeSetName=change["Id"])
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    sqs = server.client("sqs")
    assert sqs.get_queue_url(QueueName=f"{name}-r")["QueueUrl"]
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=f"{name}-q")
    summary = cfn.get_template_summary(TemplateBody=template)
    assert summary["ResourceTypes"] == ["AWS::SQS::Queue"]
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1})


def test_ssm_parameter_types_and_imports(server: HearthServer, cfn: Any) -> None:
    ssm = server.client("ssm")
    key = f"/cfn/{uuid.uuid4().hex[:6]}"
    ssm.put_parameter(Name=key, Value="from-ssm", Type="String")
    producer, consumer = _stack_name(), _stack_name()
    cfn.create_stack(StackName=producer, TemplateBody=json.dumps({
        "Parameters": {"Value": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": key}},
        "Resources": {"P": {"Type": "AWS::SSM::Parameter",
                            "Properties": {"Type": "String", "Value": {"Ref": "Value"}}}},
        "Outputs": {"Name": {"Value": {"Ref": "P"}, "Export": {"Name": f"{producer}-name"}}}}))
    stack = _wait(cfn, producer)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, producer)
    assert stack["Parameters"] == [{"ParameterKey": "Value", "ParameterValue": key, "ResolvedValue": "from-ssm"}]
    cfn.create_stack(StackName=consumer, TemplateBody=json.dumps({
        "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {
            "Tags": [{"Key": "from", "Value": {"Fn::ImportValue": f"{producer}-name"}}]}}}}))
    assert _wait(cfn, consumer)["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, consumer)
    assert cfn.list_imports(ExportName=f"{producer}-name")["Imports"] == [consumer]


SAM_TEMPLATE = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 5
    Runtime: python3.11
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Handler: index.handler
      Role: {role}
      InlineCode: |
        def handler(event, context):
            return len(event["Records"])
      Events:
        FromQueue:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 5
Outputs:
  ConsumerName:
    Value: !Ref Consumer
"""


def test_the_sam_transform_runs_as_aws_runs_it(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    body = SAM_TEMPLATE.replace("{role}", ROLE)
    with pytest.raises(ClientError) as err:
        cfn.create_stack(StackName=name, TemplateBody=body)
    assert err.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert err.value.response["Error"]["Message"] == "Requires capabilities : [CAPABILITY_AUTO_EXPAND]"
    cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_AUTO_EXPAND"])
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    types = {r["ResourceType"] for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    assert types == {"AWS::SQS::Queue", "AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"}
    function = stack["Outputs"][0]["OutputValue"]
    mappings = server.client("lambda").list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    assert mappings[0]["BatchSize"] == 5
    processed = cfn.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"]  # botocore decodes it
    assert processed["Resources"]["Consumer"]["Properties"]["Timeout"] == 5
    assert cfn.get_template(StackName=name)["TemplateBody"] == body


CUSTOM_SOURCE = """
import json, urllib.request

def handler(event, context):
    props = event["ResourceProperties"]
    status = "FAILED" if props.get("Fail") == "yes" else "SUCCESS"
    answer = {"Status": status, "Reason": "asked to fail" if status == "FAILED" else "",
              "PhysicalResourceId": event.get("PhysicalResourceId") or "custom-" + props["Name"],
              "StackId": event["StackId"], "RequestId": event["RequestId"],
              "LogicalResourceId": event["LogicalResourceId"],
              "Data": {"Greeting": "hello " + props["Name"], "Seen": event["RequestType"]}}
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(answer).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).read()
"""


def test_lambda_backed_custom_resources(server: HearthServer, cfn: Any) -> None:
    lam = server.client("lambda")
    provider = f"cr-{uuid.uuid4().hex[:6]}"
    arn = lam.create_function(FunctionName=provider, Runtime="python3.11", Handler="index.handler", Role=ROLE,
                              Code={"ZipFile": make_zip({"index.py": CUSTOM_SOURCE})})["FunctionArn"]
    wait_active(lam, provider)
    name = _stack_name()

    def template(fail: str) -> str:
        return json.dumps({"Resources": {
            "Thing": {"Type": "Custom::Greeter", "Properties": {"ServiceToken": arn, "Name": "world", "Fail": fail}},
            "Param": {"Type": "AWS::SSM::Parameter", "Properties": {
                "Type": "String", "Value": {"Fn::GetAtt": ["Thing", "Greeting"]}}}},
            "Outputs": {"Id": {"Value": {"Ref": "Thing"}}, "Seen": {"Value": {"Fn::GetAtt": "Thing.Seen"}}}})

    cfn.create_stack(StackName=name, TemplateBody=template("no"))
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"Id": "custom-world", "Seen": "Create"}
    cfn.update_stack(StackName=name, TemplateBody=template("yes"))
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert any("Thing UPDATE_FAILED asked to fail" in r for r in _reasons(cfn, name))
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1})


def test_template_urls_on_hearths_s3_and_nested_stacks(server: HearthServer, cfn: Any) -> None:
    s3 = server.client("s3")
    bucket = f"templates-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    child = {"Parameters": {"Suffix": {"Type": "String"}},
             "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {
                 "Fn::Sub": "${AWS::StackName}-${Suffix}"}}}},
             "Outputs": {"Url": {"Value": {"Ref": "Q"}}}}
    s3.put_object(Bucket=bucket, Key="child.json", Body=json.dumps(child).encode())
    parent = {"Resources": {"Child": {"Type": "AWS::CloudFormation::Stack", "Properties": {
        "TemplateURL": f"https://{bucket}.s3.us-east-1.amazonaws.com/child.json",
        "Parameters": {"Suffix": "nested"}}}},
        "Outputs": {"ChildQueue": {"Value": {"Fn::GetAtt": ["Child", "Outputs.Url"]}}}}
    s3.put_object(Bucket=bucket, Key="parent.json", Body=json.dumps(parent).encode())
    name = _stack_name()
    cfn.create_stack(StackName=name, TemplateURL=f"https://s3.us-east-1.amazonaws.com/{bucket}/parent.json")
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    url = stack["Outputs"][0]["OutputValue"]
    assert url.endswith("-nested")
    assert server.client("sqs").get_queue_url(QueueName=url.rsplit("/", 1)[-1])["QueueUrl"] == url
    with pytest.raises(ClientError) as err:
        cfn.create_stack(StackName=_stack_name(), TemplateURL=f"https://s3.amazonaws.com/{bucket}/missing.json")
    assert err.value.response["Error"]["Code"] == "ValidationError"
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    with pytest.raises(ClientError):
        server.client("sqs").get_queue_url(QueueName=url.rsplit("/", 1)[-1])


def test_stacks_act_with_the_callers_permissions_or_their_service_role(server: HearthServer, cfn: Any) -> None:
    # CloudFormation makes resources with the permissions of who asked, or of the stack's service role
    # (RoleARN, which must trust cloudformation.amazonaws.com): a user allowed only CloudFormation cannot
    # make an IAM role through a template.
    iam = server.client("iam")
    user = f"cfn-user-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="cfn-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "cloudformation:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    user_cfn = server.client("cloudformation", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    body = json.dumps({"Resources": {"Admin": {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}]},
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}}}})
    escalation = _stack_name()
    user_cfn.create_stack(StackName=escalation, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    assert _wait(cfn, escalation)["StackStatus"] == "ROLLBACK_COMPLETE"
    assert any("Admin CREATE_FAILED" in r and "iam:CreateRole" in r and "is not authorized" in r
               for r in _reasons(cfn, escalation)), _reasons(cfn, escalation)

    def service_role(service: str) -> str:
        name = f"cfn-svc-{uuid.uuid4().hex[:6]}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
        return str(arn)

    untrusting = service_role("lambda.amazonaws.com")
    with pytest.raises(ClientError) as exc:
        user_cfn.create_stack(StackName=_stack_name(), TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                              RoleARN=untrusting)
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    assert exc.value.response["Error"]["Message"] == f"Role {untrusting} is invalid or cannot be assumed"
    role_arn = service_role("cloudformation.amazonaws.com")
    granted = _stack_name()
    granted_id = user_cfn.create_stack(StackName=granted, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                                       RoleARN=role_arn)["StackId"]
    stack = _wait(cfn, granted)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, granted)
    assert stack["RoleARN"] == role_arn
    user_cfn.delete_stack(StackName=granted)  # deleted with the stack's role too
    assert _wait(cfn, granted_id)["StackStatus"] == "DELETE_COMPLETE"
    cfn.delete_stack(StackName=escalation)


def test_iam_identity_resource_types(server: HearthServer, cfn: Any) -> None:
    # Users with groups, policies and keys, group membership, instance profiles: created, updated and
    # deleted with their stack.
    name = _stack_name()
    resources: dict[str, Any] = {
        "Readers": {"Type": "AWS::IAM::Group", "Properties": {
            "ManagedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}},
        "Writers": {"Type": "AWS::IAM::Group", "Properties": {"Policies": [{"PolicyName": "sqs", "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}}]}},
        "Dev": {"Type": "AWS::IAM::User", "Properties": {"Groups": [{"Ref": "Readers"}], "Path": "/team/",
                                                         "Tags": [{"Key": "team", "Value": "a"}]}},
        "Key": {"Type": "AWS::IAM::AccessKey", "Properties": {"UserName": {"Ref": "Dev"}}},
        "Membership": {"Type": "AWS::IAM::UserToGroupAddition", "Properties": {
            "GroupName": {"Ref": "Writers"}, "Users": [{"Ref": "Dev"}]}},
        "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [ROLE.rsplit("/", 1)[1]]}},
    }
    outputs = {"KeyId": {"Value": {"Ref": "Key"}}, "Secret": {"Value": {"Fn::GetAtt": ["Key", "SecretAccessKey"]}},
               "UserArn": {"Value": {"Fn::GetAtt": ["Dev", "Arn"]}},
               "ProfileArn": {"Value": {"Fn::GetAtt": ["Profile", "Arn"]}}}
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources, "Outputs": outputs}),
                                Capabilities=["CAPABILITY_IAM"])["StackId"]
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    iam = server.client("iam")
    user = out["UserArn"].rsplit("/", 1)[1]
    assert out["UserArn"] == f"arn:aws:iam::{ACCOUNT}:user/team/{user}"
    groups = {g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]}
    assert len(groups) == 2
    key_creds = {"aws_access_key_id": out["KeyId"], "aws_secret_access_key": out["Secret"]}
    assert server.client("sts", key=key_creds["aws_access_key_id"], secret=key_creds["aws_secret_access_key"]) \
        .get_caller_identity()["Arn"] == out["UserArn"]
    profile = out["ProfileArn"].rsplit("/", 1)[1]
    assert [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]] \
        == [ROLE.rsplit("/", 1)[1]]
    # Update: the user leaves the readers group; the access key is deactivated.
    resources["Dev"]["Properties"]["Groups"] = []
    resources["Key"]["Properties"]["Status"] = "Inactive"
    cfn.update_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources, "Outputs": outputs}),
                     Capabilities=["CAPABILITY_IAM"])
    assert _wait(cfn, name)["StackStatus"] == "UPDATE_COMPLETE", _reasons(cfn, name)
    assert len(iam.list_groups_for_user(UserName=user)["Groups"]) == 1
    assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    cfn.delete_stack(StackName=name)
    assert _wait(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE", _reasons(cfn, stack_id)
    with pytest.raises(ClientError):
        iam.get_user(UserName=user)


def test_stack_and_change_set_shapes_as_aws_answers(cfn: Any) -> None:
    """Fields and texts LocalStack's AWS-validated CloudFormation tests recorded (conformance, issue 20)."""
    param = ("Parameters:\n  Items:\n    Type: List<String>\nResources:\n  P:\n    Type: AWS::SSM::Parameter\n"
             "    Properties:\n      Type: String\n      Value: !Join ['|', !Ref Items]\nOutputs:\n  V:\n"
             "    Value: !GetAtt P.Value\n")
    name = _stack_name()
    # Parameter values that do not fit, and format errors, are refused at once; no stack is left behind.
    with pytest.raises(ClientError, match=r"Parameters: \[Items\] must have values"):
        cfn.create_change_set(StackName=name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=param)
    bad = json.dumps({"Resources": {"AWS::NoValue": {"Type": "AWS::SNS::Topic"}}})
    with pytest.raises(ClientError, match="Resource name AWS::NoValue is non alphanumeric"):
        cfn.create_change_set(StackName=name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=bad)
    with pytest.raises(ClientError, match=f"Stack with id {name} does not exist"):
        cfn.describe_stacks(StackName=name)

    created = cfn.create_change_set(StackName=name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=param,
                                    Parameters=[{"ParameterKey": "Items", "ParameterValue": "a,b"}],
                                    Tags=[{"Key": "k", "Value": "v"}])
    review = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert (review["StackStatus"], review["StackStatusReason"], review["Tags"]) == ("REVIEW_IN_PROGRESS",
                                                                                     "User Initiated", [])
    assert "Capabilities" not in review and "LastUpdatedTime" not in review
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    cfn.execute_change_set(ChangeSetName=created["Id"])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["Outputs"][0]["OutputValue"] == "a|b" and stack["Tags"] == [{"Key": "k", "Value": "v"}]
    assert "LastUpdatedTime" in stack  # made by a change set: updated by its execution
    # Without macros the processed template is the original text.
    assert cfn.get_template(StackName=name, TemplateStage="Processed")["TemplateBody"] == param
    with pytest.raises(ClientError, match="StackName is a required parameter"):
        cfn.get_template(ChangeSetName="cs")
    with pytest.raises(ClientError, match=f"Resource Nope does not exist for stack {stack['StackId']}"):
        cfn.describe_stack_resource(StackName=stack["StackId"], LogicalResourceId="Nope")
    with pytest.raises(ClientError, match="Stack 'nope-stack' does not exist"):
        cfn.describe_stack_resource(StackName="nope-stack", LogicalResourceId="P")
    with pytest.raises(ClientError, match=r"Stack \[nope-stack\] does not exist"):
        cfn.describe_stack_events(StackName="nope-stack")
    summary = cfn.get_template_summary(StackName=name)
    assert summary["ResourceIdentifierSummaries"] == [
        {"ResourceType": "AWS::SSM::Parameter", "LogicalResourceIds": ["P"], "ResourceIdentifiers": ["Name"]}]
    assert "Capabilities" not in summary and "DeclaredTransforms" not in summary
    with pytest.raises(ClientError, match="At least one Resources member must be defined"):
        cfn.get_template_summary(TemplateBody="{}")
    with pytest.raises(ClientError, match="S3 error: Domain name specified in b is not a valid S3 domain"):
        cfn.create_stack(StackName=_stack_name(), TemplateURL="s3://b/t.yml")

    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    # The executed change set outlives its stack, by ARN.
    assert cfn.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    # A stack CreateStack made and never updated shows no LastUpdatedTime, even deleted.
    other = _stack_name()
    cfn.create_stack(StackName=other, TemplateBody=param, Parameters=[{"ParameterKey": "Items", "ParameterValue": "x"}])
    assert "LastUpdatedTime" not in _wait(cfn, other)
    # A change to a resource's attributes alone (here UpdateReplacePolicy) is an update, not "No updates".
    cfn.update_stack(StackName=other, TemplateBody=param.replace("    Properties:", "    UpdateReplacePolicy: Retain\n"
                                                                 "    Properties:"),
                     Parameters=[{"ParameterKey": "Items", "UsePreviousValue": True}])
    assert _wait(cfn, other)["StackStatus"] == "UPDATE_COMPLETE"
    cfn.delete_stack(StackName=other)


def test_event_bus_policies_and_log_streams(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    bus = f"{name}-bus"
    body = json.dumps({"Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": bus}},
        "ByPrincipal": {"Type": "AWS::Events::EventBusPolicy", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "StatementId": "one", "Action": "events:PutEvents",
            "Principal": "111122223333"}},
        "ByStatement": {"Type": "AWS::Events::EventBusPolicy", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "StatementId": "two", "Statement": {
                "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
                "Resource": {"Fn::GetAtt": ["Bus", "Arn"]}}}},
        "Group": {"Type": "AWS::Logs::LogGroup"},
        "Stream": {"Type": "AWS::Logs::LogStream", "Properties": {"LogGroupName": {"Ref": "Group"}}}},
        "Outputs": {"Group": {"Value": {"Ref": "Group"}}, "Stream": {"Value": {"Ref": "Stream"}}}})
    cfn.create_stack(StackName=name, TemplateBody=body)
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    policy = json.loads(server.client("events").describe_event_bus(Name=bus)["Policy"])
    assert sorted(s["Sid"] for s in policy["Statement"]) == ["one", "two"]
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    streams = server.client("logs").describe_log_streams(logGroupName=out["Group"])["logStreams"]
    assert [s["logStreamName"] for s in streams] == [out["Stream"]]
    cfn.delete_stack(StackName=name)
    assert _wait(cfn, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"


def test_a_change_set_may_create_a_stack_without_resources(cfn: Any) -> None:
    name = _stack_name()
    body = json.dumps({"Parameters": {"Create": {"Type": "String", "Default": "False"}},
                       "Conditions": {"Yes": {"Fn::Equals": [{"Ref": "Create"}, "True"]}},
                       "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Condition": "Yes"}}})
    created = cfn.create_change_set(StackName=name, ChangeSetName="cs", ChangeSetType="CREATE", TemplateBody=body)
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig={"Delay": 1})
    cfn.execute_change_set(ChangeSetName=created["Id"])
    assert _wait(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    assert cfn.list_stack_resources(StackName=name)["StackResourceSummaries"] == []
    cfn.delete_stack(StackName=name)


def test_aws_include_snippets_from_s3(server: HearthServer, cfn: Any) -> None:
    s3 = server.client("s3")
    bucket = f"inc-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="value.yaml", Body=b"Value: from-snippet\n")
    s3.put_object(Bucket=bucket, Key="topic.yaml", Body=b"Type: AWS::SNS::Topic\n")
    include = {"Fn::Transform": {"Name": "AWS::Include",
                                 "Parameters": {"Location": {"Fn::Sub": "s3://${Bucket}/KEY"}}}}
    body = json.dumps({
        "Parameters": {"Bucket": {"Type": "String"}},
        "Resources": {
            "P": {"Type": "AWS::SSM::Parameter", "Properties": {
                "Type": "String", **json.loads(json.dumps(include).replace("KEY", "value.yaml"))}},
            "T": json.loads(json.dumps(include).replace("KEY", "topic.yaml"))},
        "Outputs": {"P": {"Value": {"Ref": "P"}}, "T": {"Value": {"Ref": "T"}}}})
    name = _stack_name()
    cfn.create_stack(StackName=name, TemplateBody=body,
                     Parameters=[{"ParameterKey": "Bucket", "ParameterValue": bucket}])
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert server.client("ssm").get_parameter(Name=out["P"])["Parameter"]["Value"] == "from-snippet"
    assert server.client("sns").get_topic_attributes(TopicArn=out["T"])["Attributes"]["TopicArn"] == out["T"]
    cfn.delete_stack(StackName=name)
    # A snippet that is not there fails the change set with AWS's reason.
    failed = cfn.create_change_set(StackName=_stack_name(), ChangeSetName="cs", ChangeSetType="CREATE",
                                   TemplateBody=body.replace("value.yaml", "absent.yaml"),
                                   Parameters=[{"ParameterKey": "Bucket", "ParameterValue": "no-such-bucket-x"}])
    described = cfn.describe_change_set(ChangeSetName=failed["Id"])
    assert described["Status"] == "FAILED"
    assert described["StatusReason"] == ("Transform AWS::Include failed with: S3 bucket [no-such-bucket-x] does "
                                         "not exist.")


def test_rest_apis_carry_cloudformations_tags(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    body = json.dumps({"Resources": {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": name, "Tags": [{"Key": "k", "Value": "v"}]}},
        "Imported": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Body": {
            "openapi": "3.0.1", "info": {"title": f"{name}-i", "version": "1"}, "paths": {}}}}},
        "Outputs": {"Api": {"Value": {"Ref": "Api"}}, "Imported": {"Value": {"Ref": "Imported"}}}})
    stack_id = cfn.create_stack(StackName=name, TemplateBody=body)["StackId"]
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    apigw = server.client("apigateway")
    for logical in ("Api", "Imported"):
        api_id = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == logical)
        tags = apigw.get_rest_api(restApiId=api_id)["tags"]
        assert tags["aws:cloudformation:logical-id"] == logical
        assert (tags["aws:cloudformation:stack-id"], tags["aws:cloudformation:stack-name"]) == (stack_id, name)
def test_queue_updates_reset_removed_properties_and_inline_policies(server: HearthServer, cfn: Any) -> None:
    name = _stack_name()
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                      "Action": "sqs:SendMessage", "Resource": "*"}]}

    def template(full: bool) -> str:
        props: dict[str, Any] = {"QueueName": f"{name}-q", "Tags": [{"Key": "a", "Value": "1"}]}
        if full:
            props.update(MaximumMessageSize=1234, DelaySeconds=5, KmsMasterKeyId="alias/aws/sqs",
                         KmsDataKeyReusePeriodSeconds=297,
                         Tags=[{"Key": "a", "Value": "0"}, {"Key": "b", "Value": "2"}])
        resources: dict[str, Any] = {"Q": {"Type": "AWS::SQS::Queue", "Properties": props}}
        if full:
            resources["P"] = {"Type": "AWS::SQS::QueueInlinePolicy",
                              "Properties": {"Queue": {"Ref": "Q"}, "PolicyDocument": policy}}
        return json.dumps({"Resources": resources})

    cfn.create_stack(StackName=name, TemplateBody=template(True))
    assert _wait(cfn, name)["StackStatus"] == "CREATE_COMPLETE", _reasons(cfn, name)
    sqs = server.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{name}-q")["QueueUrl"]
    assert json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]) \
        == policy
    cfn.update_stack(StackName=name, TemplateBody=template(False))
    assert _wait(cfn, name)["StackStatus"] == "UPDATE_COMPLETE", _reasons(cfn, name)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # Removed properties are back at CloudFormation's defaults; the KMS key goes with its period.
    assert (attributes["MaximumMessageSize"], attributes["DelaySeconds"]) == ("262144", "0")
    assert "KmsMasterKeyId" not in attributes and "KmsDataKeyReusePeriodSeconds" not in attributes
    assert "Policy" not in attributes  # the inline policy resource was removed
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"a": "1"}
    cfn.delete_stack(StackName=name)
