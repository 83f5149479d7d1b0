"""The EC2 networking subset through boto3's `ec2` client (the ec2 protocol), and its CloudFormation types.

No host networking is involved: these run on any server (sandbox networking is tested in test_network.py).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.harness import ROLE, HearthServer, make_zip, wait_active

pytestmark = pytest.mark.integration


@pytest.fixture
def ec2(server: HearthServer) -> Any:
    return server.client("ec2")


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


def test_the_default_vpc_exists(ec2: Any) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["172.31.0.0/16"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
    assert len(subnets) >= 2 and all(s["DefaultForAz"] for s in subnets)
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])
    assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]


def test_vpc_subnet_and_group_lifecycle(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lc"}]}])["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc_id.startswith("vpc-") and vpc["CidrBlock"] == "10.40.0.0/16" and not vpc["IsDefault"]
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lc"]}])["Vpcs"][0]["VpcId"] == vpc_id
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    assert subnet["AvailableIpAddressCount"] == 251 and subnet["AvailabilityZone"] == "us-east-1b"
    with pytest.raises(ClientError) as conflict:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.40.1.128/25")
    assert _code(conflict) == ("InvalidSubnet.Conflict", "The CIDR '10.40.1.128/25' conflicts with another subnet")
    with pytest.raises(ClientError) as outside:
        ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.41.0.0/24")
    assert _code(outside) == ("InvalidSubnet.Range", "The CIDR '10.41.0.0/24' is invalid.")
    group = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vpc_id)["GroupId"]
    with pytest.raises(ClientError) as duplicate:
        ec2.create_security_group(GroupName="app", Description="again", VpcId=vpc_id)
    assert _code(duplicate) == ("InvalidGroup.Duplicate", f"The security group 'app' already exists for VPC '{vpc_id}'")
    with pytest.raises(ClientError) as busy:
        ec2.delete_vpc(VpcId=vpc_id)
    assert _code(busy) == ("DependencyViolation", f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc_id)
    with pytest.raises(ClientError) as gone:
        ec2.describe_vpcs(VpcIds=[vpc_id])
    assert _code(gone) == ("InvalidVpcID.NotFound", f"The vpc ID '{vpc_id}' does not exist")


def test_security_group_rules(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc_id)["GroupId"]
    peer = ec2.create_security_group(GroupName="peer", Description="peer", VpcId=vpc_id)["GroupId"]
    described = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert described["IpPermissions"] == []
    assert [p["IpProtocol"] for p in described["IpPermissionsEgress"]] == ["-1"]  # all egress by default
    pg = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.42.0.0/16"}]}
    rules = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[pg])["SecurityGroupRules"]
    assert rules[0]["IsEgress"] is False and rules[0]["CidrIpv4"] == "10.42.0.0/16"
    with pytest.raises(ClientError) as duplicate:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[pg])
    assert _code(duplicate)[0] == "InvalidPermission.Duplicate"
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": peer}]}])
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[{"IpProtocol": "-1",
                                                                     "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    described = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert described["IpPermissions"][0]["FromPort"] == 5432
    egress = described["IpPermissionsEgress"]
    assert len(egress) == 1 and egress[0]["UserIdGroupPairs"][0]["GroupId"] == peer
    with pytest.raises(ClientError) as missing:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=[{**pg, "FromPort": 1, "ToPort": 1}])
    assert _code(missing) == ("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "group-name", "Values": ["default"]}])
    with pytest.raises(ClientError) as protected:
        ec2.delete_security_group(GroupId=default["SecurityGroups"][0]["GroupId"])
    assert _code(protected)[0] == "CannotDelete"


def test_tags(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.43.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "team", "Value": "data"}, {"Key": "env", "Value": "dev"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["Tags"]
    assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tags} == {("team", "data", "vpc"), ("env", "dev", "vpc")}
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "env"}])
    assert [t["Key"] for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["Tags"]] == [
        "team"]
    with pytest.raises(ClientError) as missing:
        ec2.create_tags(Resources=["vpc-0000000000000000f"], Tags=[{"Key": "a", "Value": "b"}])
    assert _code(missing) == ("InvalidVpcID.NotFound", "The vpc ID 'vpc-0000000000000000f' does not exist")


def test_a_vpc_function_shows_its_configuration_and_interface(server: HearthServer, ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.44.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.44.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc_id)["GroupId"]
    lam = server.client("lambda")
    created = lam.create_function(FunctionName="ec2-vpc-fn", Runtime="python3.11", Handler="app.handler", Role=ROLE,
                                  Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    return 1\n"})},
                                  VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    assert created["State"] == "Pending"
    cfg = wait_active(lam, "ec2-vpc-fn")
    assert cfg["State"] == "Active"
    assert cfg["VpcConfig"] == {"SubnetIds": [subnet], "SecurityGroupIds": [group], "VpcId": vpc_id,
                                "Ipv6AllowedForDualStack": False}
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])["NetworkInterfaces"]
    assert len(enis) == 1 and enis[0]["InterfaceType"] == "lambda" and enis[0]["SubnetId"] == subnet
    lam.update_function_configuration(FunctionName="ec2-vpc-fn", VpcConfig={"SubnetIds": [], "SecurityGroupIds": []})
    cfg = wait_active(lam, "ec2-vpc-fn")
    assert cfg["VpcConfig"] == {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": "", "Ipv6AllowedForDualStack": False}
    # No function needs the interface any more: it goes, and the subnet and group can be deleted.
    assert ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])["NetworkInterfaces"] == []
    lam.delete_function(FunctionName="ec2-vpc-fn")
    ec2.delete_security_group(GroupId=group)
    ec2.delete_subnet(SubnetId=subnet)


def test_cloudformation_network_resources(server: HearthServer, ec2: Any) -> None:
    cfn = server.client("cloudformation")
    name = f"net-{uuid.uuid4().hex[:8]}"
    template = {"Resources": {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.45.0.0/16",
                                                        "Tags": [{"Key": "Name", "Value": name}]}},
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.45.1.0/24"}},
        "Group": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "db clients", "VpcId": {"Ref": "Vpc"},
            "SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                     "CidrIp": "10.45.1.0/24"}]}},
        "Https": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
            "GroupId": {"Fn::GetAtt": ["Group", "GroupId"]}, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "CidrIp": "10.45.0.0/16"}},
    }, "Outputs": {"Subnet": {"Value": {"Ref": "Subnet"}}, "Group": {"Value": {"Ref": "Group"}},
                   "DefaultGroup": {"Value": {"Fn::GetAtt": ["Vpc", "DefaultSecurityGroup"]}}}}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    stack = _wait(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    group = ec2.describe_security_groups(GroupIds=[outputs["Group"]])["SecurityGroups"][0]
    assert [(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissionsEgress"]] == [("tcp", 5432)]
    assert [(p["IpProtocol"], p.get("FromPort")) for p in group["IpPermissions"]] == [("tcp", 443)]
    assert ec2.describe_subnets(SubnetIds=[outputs["Subnet"]])["Subnets"][0]["CidrBlock"] == "10.45.1.0/24"
    assert outputs["DefaultGroup"].startswith("sg-")
    cfn.delete_stack(StackName=name)
    deadline = time.monotonic() + 60
    while cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] != "DELETE_COMPLETE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"] == []


def _wait(cfn: Any, name: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        assert time.monotonic() < deadline, f"stack {name} still {stack['StackStatus']}"
        time.sleep(0.1)
