"""CloudFormation resource types of IAM, S3 and DynamoDB, written against those services' APIs."""

from __future__ import annotations

from typing import Any

from hearth.services.cloudformation.resources.base import (
    Handler,
    Outcome,
    ResourceRequest,
    as_json,
    ignore_missing,
    tags_list,
    wait_until,
)

# -- IAM -------------------------------------------------------------------------------------------------


class Role(Handler):
    type = "AWS::IAM::Role"
    attributes = ("Arn", "RoleId")
    replace_on = frozenset({"RoleName", "Path"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("RoleName", 64)
        out = await r.client("iam", "CreateRole", {
            "RoleName": name, "Path": p.get("Path"), "AssumeRolePolicyDocument": as_json(p["AssumeRolePolicyDocument"]),
            "Description": p.get("Description"), "MaxSessionDuration": p.get("MaxSessionDuration"),
            "PermissionsBoundary": p.get("PermissionsBoundary"), "Tags": tags_list(p.get("Tags")) or None})
        r.created = name
        await self._policies(r, name, {})
        role = out["Role"]
        return Outcome(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    async def _policies(self, r: ResourceRequest, name: str, old: dict[str, Any]) -> None:
        p = r.properties
        new_inline = {x["PolicyName"]: x["PolicyDocument"] for x in p.get("Policies") or []}
        old_inline = {x["PolicyName"]: x["PolicyDocument"] for x in old.get("Policies") or []}
        for policy in old_inline.keys() - new_inline.keys():
            await ignore_missing(r.client("iam", "DeleteRolePolicy", {"RoleName": name, "PolicyName": policy}))
        for policy, document in new_inline.items():
            if old_inline.get(policy) != document:
                await r.client("iam", "PutRolePolicy", {"RoleName": name, "PolicyName": policy,
                                                        "PolicyDocument": as_json(document)})
        new_managed = set(p.get("ManagedPolicyArns") or [])
        old_managed = set(old.get("ManagedPolicyArns") or [])
        for arn in old_managed - new_managed:
            await ignore_missing(r.client("iam", "DetachRolePolicy", {"RoleName": name, "PolicyArn": arn}))
        for arn in sorted(new_managed - old_managed):
            await r.client("iam", "AttachRolePolicy", {"RoleName": name, "PolicyArn": arn})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        p = r.properties
        if p.get("AssumeRolePolicyDocument") != old.get("AssumeRolePolicyDocument"):
            await r.client("iam", "UpdateAssumeRolePolicy", {
                "RoleName": name, "PolicyDocument": as_json(p["AssumeRolePolicyDocument"])})
        await self._policies(r, name, old)
        role = (await r.client("iam", "GetRole", {"RoleName": name}))["Role"]
        return Outcome(name, {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    async def delete(self, r: ResourceRequest) -> None:
        name = str(r.physical_id)
        for x in r.properties.get("Policies") or []:
            await ignore_missing(r.client("iam", "DeleteRolePolicy", {"RoleName": name, "PolicyName": x["PolicyName"]}))
        for arn in r.properties.get("ManagedPolicyArns") or []:
            await ignore_missing(r.client("iam", "DetachRolePolicy", {"RoleName": name, "PolicyArn": arn}))
        await ignore_missing(r.client("iam", "DeleteRole", {"RoleName": name}))


class Policy(Handler):
    """`AWS::IAM::Policy`: one inline policy put on each named role, user and group."""

    type = "AWS::IAM::Policy"
    attributes = ("Id",)

    async def create(self, r: ResourceRequest) -> Outcome:
        await self._put(r, r.properties)
        physical = f"{r.stack_name[:10]}-{r.logical_id[:10]}-{r.stack_id.rsplit('-', 1)[-1][:8]}"
        return Outcome(physical, {"Id": physical})

    async def _put(self, r: ResourceRequest, p: dict[str, Any]) -> None:
        document = as_json(p["PolicyDocument"])
        for role in p.get("Roles") or []:
            await r.client("iam", "PutRolePolicy", {"RoleName": role, "PolicyName": p["PolicyName"],
                                                    "PolicyDocument": document})
        for user in p.get("Users") or []:
            await r.client("iam", "PutUserPolicy", {"UserName": user, "PolicyName": p["PolicyName"],
                                                    "PolicyDocument": document})
        for group in p.get("Groups") or []:
            await r.client("iam", "PutGroupPolicy", {"GroupName": group, "PolicyName": p["PolicyName"],
                                                     "PolicyDocument": document})

    async def _remove(self, r: ResourceRequest, p: dict[str, Any]) -> None:
        for role in p.get("Roles") or []:
            await ignore_missing(r.client("iam", "DeleteRolePolicy", {"RoleName": role, "PolicyName": p["PolicyName"]}))
        for user in p.get("Users") or []:
            await ignore_missing(r.client("iam", "DeleteUserPolicy", {"UserName": user, "PolicyName": p["PolicyName"]}))
        for group in p.get("Groups") or []:
            await ignore_missing(r.client("iam", "DeleteGroupPolicy", {"GroupName": group,
                                                                       "PolicyName": p["PolicyName"]}))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        await self._remove(r, old)
        await self._put(r, r.properties)
        return Outcome(str(r.physical_id), {"Id": str(r.physical_id)})

    async def delete(self, r: ResourceRequest) -> None:
        await self._remove(r, r.properties)


class ManagedPolicy(Handler):
    type = "AWS::IAM::ManagedPolicy"
    attributes = ("PolicyArn", "PolicyId", "DefaultVersionId", "AttachmentCount")
    replace_on = frozenset({"ManagedPolicyName", "Path"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("ManagedPolicyName", 128)
        out = (await r.client("iam", "CreatePolicy", {
            "PolicyName": name, "Path": p.get("Path"), "Description": p.get("Description"),
            "PolicyDocument": as_json(p["PolicyDocument"])}))["Policy"]
        r.created = out["Arn"]
        await self._attach(r, out["Arn"], p, {})
        return Outcome(out["Arn"], {"PolicyArn": out["Arn"], "PolicyId": out["PolicyId"],
                                    "DefaultVersionId": out.get("DefaultVersionId", "v1"), "AttachmentCount": 0})

    async def _attach(self, r: ResourceRequest, arn: str, new: dict[str, Any], old: dict[str, Any]) -> None:
        for kind, op, detach, key in (("Roles", "AttachRolePolicy", "DetachRolePolicy", "RoleName"),
                                      ("Users", "AttachUserPolicy", "DetachUserPolicy", "UserName"),
                                      ("Groups", "AttachGroupPolicy", "DetachGroupPolicy", "GroupName")):
            wanted, had = set(new.get(kind) or []), set(old.get(kind) or [])
            for name in had - wanted:
                await ignore_missing(r.client("iam", detach, {key: name, "PolicyArn": arn}))
            for name in sorted(wanted - had):
                await r.client("iam", op, {key: name, "PolicyArn": arn})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        arn = str(r.physical_id)
        if r.properties.get("PolicyDocument") != old.get("PolicyDocument"):
            await r.client("iam", "CreatePolicyVersion", {"PolicyArn": arn, "SetAsDefault": True,
                                                          "PolicyDocument": as_json(r.properties["PolicyDocument"])})
        await self._attach(r, arn, r.properties, old)
        policy = (await r.client("iam", "GetPolicy", {"PolicyArn": arn}))["Policy"]
        return Outcome(arn, {"PolicyArn": arn, "PolicyId": policy["PolicyId"],
                             "DefaultVersionId": policy.get("DefaultVersionId"),
                             "AttachmentCount": policy.get("AttachmentCount", 0)})

    async def delete(self, r: ResourceRequest) -> None:
        arn = str(r.physical_id)
        await self._attach(r, arn, {}, r.properties)
        versions = await r.client("iam", "ListPolicyVersions", {"PolicyArn": arn})
        for version in versions.get("Versions", []):
            if not version.get("IsDefaultVersion"):
                await ignore_missing(r.client("iam", "DeletePolicyVersion", {"PolicyArn": arn,
                                                                             "VersionId": version["VersionId"]}))
        await ignore_missing(r.client("iam", "DeletePolicy", {"PolicyArn": arn}))


# -- S3 --------------------------------------------------------------------------------------------------


def _notification(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration in the API's shape."""

    def filt(item: dict[str, Any]) -> dict[str, Any]:
        rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
        return {"Filter": {"Key": {"FilterRules": [{"Name": x["Name"], "Value": x["Value"]} for x in rules]}}} \
            if rules else {}

    out: dict[str, Any] = {}
    lambdas = [{"LambdaFunctionArn": c["Function"], "Events": [c["Event"]], **filt(c)}
               for c in config.get("LambdaConfigurations") or []]
    queues = [{"QueueArn": c["Queue"], "Events": [c["Event"]], **filt(c)}
              for c in config.get("QueueConfigurations") or []]
    topics = [{"TopicArn": c["Topic"], "Events": [c["Event"]], **filt(c)}
              for c in config.get("TopicConfigurations") or []]
    if lambdas:
        out["LambdaFunctionConfigurations"] = lambdas
    if queues:
        out["QueueConfigurations"] = queues
    if topics:
        out["TopicConfigurations"] = topics
    if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
        out["EventBridgeConfiguration"] = {}
    return out


class Bucket(Handler):
    type = "AWS::S3::Bucket"
    attributes = ("Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL")
    replace_on = frozenset({"BucketName"})

    async def create(self, r: ResourceRequest) -> Outcome:
        name = r.name("BucketName", 63, lower=True)
        params: dict[str, Any] = {"Bucket": name}
        if r.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": r.region}
        await r.client("s3", "CreateBucket", params)
        r.created = name
        await self._configure(r, name, {})
        return Outcome(name, self._attributes(r, name))

    def _attributes(self, r: ResourceRequest, name: str) -> dict[str, Any]:
        return {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{r.region}.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{r.region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{r.region}.amazonaws.com"}

    async def _configure(self, r: ResourceRequest, name: str, old: dict[str, Any]) -> None:
        p = r.properties

        def changed(key: str) -> bool:
            return p.get(key) != old.get(key)

        if changed("PublicAccessBlockConfiguration"):
            block = p.get("PublicAccessBlockConfiguration")
            if block:
                await r.client("s3", "PutPublicAccessBlock", {"Bucket": name, "PublicAccessBlockConfiguration": {
                    k: str(v).lower() == "true" for k, v in block.items()}})
            else:
                await ignore_missing(r.client("s3", "DeletePublicAccessBlock", {"Bucket": name}))
        if changed("VersioningConfiguration") and p.get("VersioningConfiguration"):
            await r.client("s3", "PutBucketVersioning", {"Bucket": name, "VersioningConfiguration": {
                "Status": p["VersioningConfiguration"]["Status"]}})
        if changed("Tags"):
            if p.get("Tags"):
                await r.client("s3", "PutBucketTagging", {"Bucket": name, "Tagging": {"TagSet": tags_list(p["Tags"])}})
            else:
                await ignore_missing(r.client("s3", "DeleteBucketTagging", {"Bucket": name}))
        if changed("CorsConfiguration"):
            cors = p.get("CorsConfiguration")
            if cors:
                await r.client("s3", "PutBucketCors", {"Bucket": name, "CORSConfiguration": {"CORSRules": [
                    {k: v for k, v in rule.items() if k in ("AllowedHeaders", "AllowedMethods", "AllowedOrigins",
                                                            "ExposedHeaders", "ID", "MaxAge")}
                    | ({"MaxAgeSeconds": int(rule["MaxAge"])} if "MaxAge" in rule else {})
                    for rule in cors.get("CorsRules", [])]}})
            else:
                await ignore_missing(r.client("s3", "DeleteBucketCors", {"Bucket": name}))
        if changed("BucketEncryption") and p.get("BucketEncryption"):
            await r.client("s3", "PutBucketEncryption", {"Bucket": name, "ServerSideEncryptionConfiguration": {
                "Rules": p["BucketEncryption"].get("ServerSideEncryptionConfiguration", [])}})
        if changed("LifecycleConfiguration") and p.get("LifecycleConfiguration"):
            rules = []
            for rule in p["LifecycleConfiguration"].get("Rules", []):
                item: dict[str, Any] = {"ID": rule.get("Id"), "Status": rule["Status"],
                                        "Filter": {"Prefix": rule.get("Prefix", "")}}
                if "ExpirationInDays" in rule:
                    item["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
                rules.append({k: v for k, v in item.items() if v is not None})
            await r.client("s3", "PutBucketLifecycleConfiguration", {"Bucket": name,
                                                                     "LifecycleConfiguration": {"Rules": rules}})
        if changed("NotificationConfiguration"):
            await r.client("s3", "PutBucketNotificationConfiguration", {
                "Bucket": name, "NotificationConfiguration": _notification(p.get("NotificationConfiguration") or {})})

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        await self._configure(r, name, old)
        return Outcome(name, self._attributes(r, name))

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("s3", "DeleteBucket", {"Bucket": str(r.physical_id)}))


class BucketPolicy(Handler):
    type = "AWS::S3::BucketPolicy"
    replace_on = frozenset({"Bucket"})

    async def create(self, r: ResourceRequest) -> Outcome:
        await r.client("s3", "PutBucketPolicy", {"Bucket": r.properties["Bucket"],
                                                 "Policy": as_json(r.properties["PolicyDocument"])})
        return Outcome(str(r.properties["Bucket"]))

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        return await self.create(r)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("s3", "DeleteBucketPolicy", {"Bucket": r.properties["Bucket"]}))


# -- DynamoDB --------------------------------------------------------------------------------------------


class Table(Handler):
    type = "AWS::DynamoDB::Table"
    attributes = ("Arn", "StreamArn")
    replace_on = frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"})

    async def create(self, r: ResourceRequest) -> Outcome:
        p = r.properties
        name = r.name("TableName", 255)
        stream = p.get("StreamSpecification")
        params: dict[str, Any] = {
            "TableName": name, "AttributeDefinitions": p["AttributeDefinitions"], "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode"), "ProvisionedThroughput": _throughput(p.get("ProvisionedThroughput")),
            "GlobalSecondaryIndexes": [_index(i) for i in p["GlobalSecondaryIndexes"]]
            if p.get("GlobalSecondaryIndexes") else None,
            "LocalSecondaryIndexes": p.get("LocalSecondaryIndexes"),
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
            if stream else None,
            "SSESpecification": {"Enabled": bool(p["SSESpecification"].get("SSEEnabled"))}
            if p.get("SSESpecification") else None,
            "TableClass": p.get("TableClass"), "Tags": tags_list(p.get("Tags")) or None,
            "DeletionProtectionEnabled": p.get("DeletionProtectionEnabled")}
        await r.client("dynamodb", "CreateTable", params)
        r.created = name
        outcome = await self._settle(r, name)
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            await r.client("dynamodb", "UpdateTimeToLive", {"TableName": name, "TimeToLiveSpecification": {
                "Enabled": bool(ttl.get("Enabled")), "AttributeName": ttl["AttributeName"]}})
        return outcome

    async def _settle(self, r: ResourceRequest, name: str) -> Outcome:
        table: dict[str, Any] = {}

        async def active() -> bool:
            nonlocal table
            table = (await r.client("dynamodb", "DescribeTable", {"TableName": name}))["Table"]
            return bool(table["TableStatus"] == "ACTIVE")

        await wait_until(active, 300, f"table {name} to become ACTIVE")
        attrs = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attrs["StreamArn"] = table["LatestStreamArn"]
        return Outcome(name, attrs)

    async def update(self, r: ResourceRequest, old: dict[str, Any]) -> Outcome:
        name = str(r.physical_id)
        p = r.properties
        if p.get("StreamSpecification") != old.get("StreamSpecification"):
            stream = p.get("StreamSpecification")
            await r.client("dynamodb", "UpdateTable", {"TableName": name, "StreamSpecification": {
                "StreamEnabled": bool(stream), **({"StreamViewType": stream["StreamViewType"]} if stream else {})}})
        if p.get("BillingMode") != old.get("BillingMode") or p.get("ProvisionedThroughput") != old.get(
                "ProvisionedThroughput"):
            await r.client("dynamodb", "UpdateTable", {"TableName": name, "BillingMode": p.get("BillingMode"),
                                                       "ProvisionedThroughput": _throughput(
                                                           p.get("ProvisionedThroughput"))})
        old_indexes = {i["IndexName"]: i for i in old.get("GlobalSecondaryIndexes") or []}
        new_indexes = {i["IndexName"]: i for i in p.get("GlobalSecondaryIndexes") or []}
        updates: list[dict[str, Any]] = [{"Delete": {"IndexName": n}} for n in old_indexes.keys() - new_indexes.keys()]
        updates += [{"Create": _index(new_indexes[n])} for n in new_indexes.keys() - old_indexes.keys()]
        for update in updates:
            await r.client("dynamodb", "UpdateTable", {"TableName": name,
                                                       "AttributeDefinitions": p["AttributeDefinitions"],
                                                       "GlobalSecondaryIndexUpdates": [update]})
            await self._settle(r, name)
        if p.get("TimeToLiveSpecification") != old.get("TimeToLiveSpecification"):
            ttl = p.get("TimeToLiveSpecification") or old.get("TimeToLiveSpecification")
            if ttl:
                await r.client("dynamodb", "UpdateTimeToLive", {"TableName": name, "TimeToLiveSpecification": {
                    "Enabled": bool(p.get("TimeToLiveSpecification", {}).get("Enabled")),
                    "AttributeName": ttl["AttributeName"]}})
        return await self._settle(r, name)

    async def delete(self, r: ResourceRequest) -> None:
        await ignore_missing(r.client("dynamodb", "DeleteTable", {"TableName": str(r.physical_id)}))


def _throughput(value: dict[str, Any] | None) -> dict[str, int] | None:
    if not value:
        return None
    return {"ReadCapacityUnits": int(value["ReadCapacityUnits"]),
            "WriteCapacityUnits": int(value["WriteCapacityUnits"])}


def _index(index: dict[str, Any]) -> dict[str, Any]:
    out = dict(index)
    if "ProvisionedThroughput" in out:
        out["ProvisionedThroughput"] = _throughput(out["ProvisionedThroughput"])
    out.pop("ContributorInsightsSpecification", None)
    return out


HANDLERS: tuple[type[Handler], ...] = (Role, Policy, ManagedPolicy, Bucket, BucketPolicy, Table)
