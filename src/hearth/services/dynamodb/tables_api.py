"""DynamoDB's table operations: Create/Describe/Update/Delete/ListTables, tags, time to live, limits,
endpoints, continuous backups, contributor insights, and global tables' replicas (UpdateTable's
ReplicaUpdates; the writes themselves reach every replica through the store's `Writer.put`).

It owns the table description as AWS shows it (checked against shared/reference/aws-recorded
21_dynamodb_shapes.json: CreateTable answers CREATING, DescribeTable ACTIVE with WarmThroughput,
DeleteTable DELETING without KeySchema, PAY_PER_REQUEST tables show a BillingModeSummary and zero
throughput) and the schema rules. Decisions where AWS is unclear: a table (and an added index) is
ACTIVE as soon as the call returns, since there is nothing to provision; a disabled stream keeps its
records readable for 24 hours. It never touches items except through the store.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.dynamodb import checks as rq
from hearth.services.dynamodb import values as v
from hearth.services.dynamodb.store import Table, TableStore, stream_arn

MAX_TAGS = 50

ManagedKey = Callable[[str, str, str], str]  # (account, region, service) -> key ARN


def _stream_label(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _key_check(schema: list[dict[str, str]], defined: set[str], where: str) -> None:
    hashes = [k for k in schema if k["KeyType"] == "HASH"]
    if len(hashes) != 1 or (len(schema) == 2 and schema[0]["KeyType"] != "HASH") or len(schema) > 2:
        raise v.invalid_param(f"Invalid KeySchema: {where} must have exactly one HASH key, followed by at most one "
                              "RANGE key")


class TablesProvider:
    def __init__(self, store: TableStore, managed_key: ManagedKey) -> None:
        self.store = store
        # The ARN of an account's AWS managed KMS key for a service (server-side encryption by default).
        self.managed_key = managed_key

    # -- rendering ----------------------------------------------------------------------------------

    def describe(self, t: Table, status: str | None = None) -> dict[str, Any]:
        doc = {k: copy.deepcopy(val) for k, val in t.doc.items() if not k.startswith("_")}
        count, size = self.store.counts(t)
        doc["ItemCount"], doc["TableSizeBytes"] = count, size
        doc["TableStatus"] = status or "ACTIVE"
        doc["CreationDateTime"] = datetime.fromtimestamp(t.doc["_created"], UTC)
        for field in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for ix in doc.get(field) or []:
                n, s = self.store.counts(t, ix["IndexName"])
                ix["ItemCount"], ix["IndexSizeBytes"] = n, s
                ix["IndexArn"] = f"{t.arn}/index/{ix['IndexName']}"
                if field == "GlobalSecondaryIndexes":
                    ix["IndexStatus"] = "ACTIVE"
                    if status is None:
                        ipt = ix["ProvisionedThroughput"]
                        ix["WarmThroughput"] = {"ReadUnitsPerSecond": ipt["ReadCapacityUnits"] or 12000,
                                                "WriteUnitsPerSecond": ipt["WriteCapacityUnits"] or 4000,
                                                "Status": "ACTIVE"}
        if doc.get("BillingModeSummary") and status != "CREATING":
            since = t.doc.get("_on_demand_since", t.doc["_created"])
            doc["BillingModeSummary"]["LastUpdateToPayPerRequestDateTime"] = datetime.fromtimestamp(since, UTC)
        warm = t.doc.get("_warm")
        if status in (None, "UPDATING") or (warm and status == "CREATING"):
            # UpdateTable's answer carries it too (AWS, LocalStack's ESM tests); CreateTable's only when the
            # request asked for a warm throughput, then still UPDATING (AWS).
            pt = doc["ProvisionedThroughput"]
            doc["WarmThroughput"] = {"ReadUnitsPerSecond": pt["ReadCapacityUnits"] or 12000,
                                     "WriteUnitsPerSecond": pt["WriteCapacityUnits"] or 4000,
                                     "Status": "UPDATING" if status == "CREATING" else "ACTIVE"}
            if warm:
                doc["WarmThroughput"].update(warm)
        if t.replica_regions:
            doc["GlobalTableVersion"] = "2019.11.21"
            doc["Replicas"] = [{"RegionName": r, "ReplicaStatus": "ACTIVE"} for r in t.replica_regions]
        if status == "DELETING":
            for field in ("KeySchema", "AttributeDefinitions", "WarmThroughput"):
                doc.pop(field, None)
        return doc

    # -- operations ---------------------------------------------------------------------------------

    def create_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TableName"]
        defs = list(params.get("AttributeDefinitions") or [])
        if not params.get("KeySchema"):
            raise v.invalid("1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: "
                            "Member must not be null")
        schema = list(params["KeySchema"])
        defined = {d["AttributeName"] for d in defs}
        if len(defined) != len(defs):
            raise v.invalid_param("Duplicate attribute name in AttributeDefinitions")
        _key_check(schema, defined, "Table KeySchema")
        used = {k["AttributeName"] for k in schema}
        lsis = list(params.get("LocalSecondaryIndexes") or [])
        gsis = list(params.get("GlobalSecondaryIndexes") or [])
        hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
        has_range = len(schema) == 2
        if lsis and not has_range:
            raise v.invalid_param("Table KeySchema does not have a range key, which is required when specifying a "
                                  "LocalSecondaryIndex")
        names: set[str] = set()
        for ix in [*lsis, *gsis]:
            if ix["IndexName"] in names:
                raise v.invalid_param(f"Duplicate index name: {ix['IndexName']}")
            names.add(ix["IndexName"])
            _key_check(ix["KeySchema"], defined, "Index KeySchema")
            used |= {k["AttributeName"] for k in ix["KeySchema"]}
        for ix in lsis:
            ix_hash = next(k["AttributeName"] for k in ix["KeySchema"] if k["KeyType"] == "HASH")
            if ix_hash != hash_key:
                raise v.invalid_param(f"Index KeySchema does not have the same leading hash key as table KeySchema "
                                      f"for index: {ix['IndexName']}. index hash key: {ix_hash}, table hash key: "
                                      f"{hash_key}")
            if len(ix["KeySchema"]) != 2:
                raise v.invalid_param(f"Index KeySchema does not have a range key for index: {ix['IndexName']}")
        missing = sorted(used - defined)
        if missing:
            raise v.invalid_param(f"Some index key attributes are not defined in AttributeDefinitions. Keys: "
                                  f"[{', '.join(missing)}], AttributeDefinitions: [{', '.join(sorted(defined))}]")
        if defined - used:
            raise v.invalid_param("Number of attributes in KeySchema does not exactly match number of attributes "
                                  "defined in AttributeDefinitions")
        billing = params.get("BillingMode") or "PROVISIONED"
        throughput = self._throughput(billing, params.get("ProvisionedThroughput"))
        now = self.store.clock()
        doc: dict[str, Any] = {
            "AttributeDefinitions": defs, "KeySchema": schema, "TableName": name,
            "ProvisionedThroughput": throughput, "TableArn": f"arn:aws:dynamodb:{ctx.region}:{ctx.account_id}:table/"
                                                           f"{name}",
            "TableId": str(uuid.uuid4()), "DeletionProtectionEnabled": bool(params.get("DeletionProtectionEnabled")),
            "_created": now, "_tags": {t["Key"]: t["Value"] for t in params.get("Tags") or []},
        }
        if billing == "PAY_PER_REQUEST":
            doc["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
        if lsis:
            doc["LocalSecondaryIndexes"] = [{"IndexName": ix["IndexName"], "KeySchema": ix["KeySchema"],
                                             "Projection": ix["Projection"]} for ix in lsis]
        if gsis:
            doc["GlobalSecondaryIndexes"] = [self._gsi(ix, billing) for ix in gsis]
        self._stream_spec(doc, params.get("StreamSpecification"), now, ctx)
        sse = params.get("SSESpecification")
        if sse and sse.get("Enabled"):
            doc["SSEDescription"] = self._sse(ctx, sse)
        if params.get("TableClass"):
            doc["TableClassSummary"] = {"TableClass": params["TableClass"]}
        self._warm_throughput(doc, params.get("WarmThroughput"))
        table = Table(ctx.account_id, ctx.region, name, doc)
        if not self.store.create_table(table):
            raise AwsError("ResourceInUseException", f"Table already exists: {name}")
        return {"TableDescription": self.describe(table, "CREATING")}

    @staticmethod
    def _warm_throughput(doc: dict[str, Any], given: dict[str, Any] | None) -> None:
        """Store the warm throughput a request asked for (nothing is provisioned: it is reported as asked)."""
        if not given:
            return
        warm = dict(doc.get("_warm") or {})
        for field in ("ReadUnitsPerSecond", "WriteUnitsPerSecond"):
            if given.get(field) is not None:
                warm[field] = int(given[field])
        doc["_warm"] = warm

    @staticmethod
    def _throughput(billing: str, given: dict[str, Any] | None) -> dict[str, Any]:
        if billing == "PAY_PER_REQUEST":
            if given:
                raise v.invalid_param("Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                                      "BillingMode is PAY_PER_REQUEST")
            return {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0}
        if not given:
            raise v.invalid_param("ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode "
                                  "is PROVISIONED")
        return {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": int(given["ReadCapacityUnits"]),
                "WriteCapacityUnits": int(given["WriteCapacityUnits"])}

    def _gsi(self, ix: dict[str, Any], billing: str) -> dict[str, Any]:
        return {"IndexName": ix["IndexName"], "KeySchema": ix["KeySchema"], "Projection": ix["Projection"],
                "ProvisionedThroughput": self._throughput(billing, ix.get("ProvisionedThroughput"))}

    def _stream_spec(self, doc: dict[str, Any], spec: dict[str, Any] | None, now: float,
                     ctx: RequestContext) -> None:
        if spec is None:
            return
        if spec.get("StreamEnabled"):
            if not spec.get("StreamViewType"):
                raise v.invalid("You must provide a StreamViewType when you enable DynamoDB Streams")
            current = doc.get("StreamSpecification") or {}
            if current.get("StreamEnabled"):
                raise v.invalid(f"Table already has an enabled stream: {doc['TableName']}")
            label = _stream_label(now)
            doc["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": spec["StreamViewType"]}
            doc["LatestStreamLabel"] = label
            doc["LatestStreamArn"] = stream_arn(doc["TableArn"], label)
        else:
            current = doc.get("StreamSpecification") or {}
            if doc.get("LatestStreamLabel") is not None and not current.get("StreamEnabled"):
                raise v.invalid(f"Table already has no enabled stream: {doc['TableName']}")
            if current.get("StreamEnabled"):
                doc["StreamSpecification"] = {"StreamEnabled": False}

    def _sse(self, ctx: RequestContext, sse: dict[str, Any]) -> dict[str, Any]:
        """The SSEDescription of encryption with a KMS key: the one asked for (a key id becomes its ARN), or
        the account's AWS managed key for DynamoDB (`alias/aws/dynamodb`)."""
        key = sse.get("KMSMasterKeyId")
        if not key:
            arn = self.managed_key(ctx.account_id, ctx.region, "dynamodb")
        elif key.startswith("arn:"):
            arn = key
        else:
            arn = f"arn:aws:kms:{ctx.region}:{ctx.account_id}:{key if key.startswith('alias/') else 'key/' + key}"
        return {"Status": "ENABLED", "SSEType": sse.get("SSEType") or "KMS", "KMSMasterKeyArn": arn}

    def describe_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        return {"Table": self.describe(t)}

    def delete_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        if t.doc.get("DeletionProtectionEnabled"):
            raise v.invalid("Resource cannot be deleted as it is currently protected against deletion. Disable "
                            "deletion protection first.")
        described = self.describe(t, "DELETING")
        self.store.delete_table(t)
        for region in t.replica_regions:  # the rest of the global table no longer writes here
            self._set_replicas(ctx.account_id, region, t.name, [r for r in t.doc["_replicas"] if r != t.region])
        return {"TableDescription": described}

    def _set_replicas(self, account: str, region: str, name: str, regions: list[str]) -> None:
        member = self.store.get_table(account, region, name)
        if member is None:
            return
        doc = copy.deepcopy(member.doc)
        if len(regions) > 1:
            doc["_replicas"] = sorted(regions)
        else:
            doc.pop("_replicas", None)
        self.store.update_table(member, Table(account, region, name, doc))

    def _replica_updates(self, ctx: RequestContext, t: Table, updates: list[dict[str, Any]]) -> Table:
        """Global tables (version 2019.11.21): a replica is a table of the same name in another region of
        the account, created with the table's schema and items; every write to one is made in all of them
        (`store.Writer.put`), each replica with its own stream."""
        regions = list(t.doc.get("_replicas") or [t.region])
        for update in updates:
            if "Create" in update:
                region = update["Create"]["RegionName"]
                if region in regions or self.store.get_table(t.account, region, t.name) is not None:
                    raise v.invalid(f"Failed to create a the new replica of table with name: '{t.name}' because one "
                                    "or more replicas already existed as tables.")
                now = self.store.clock()
                doc = {k: copy.deepcopy(val) for k, val in t.doc.items() if k not in ("_kinesis", "_insights",
                                                                                      "_tags")}
                doc.update(TableArn=f"arn:aws:dynamodb:{region}:{t.account}:table/{t.name}",
                           TableId=str(uuid.uuid4()), _created=now)
                if t.stream_view is not None:
                    label = _stream_label(now)
                    doc.update(LatestStreamLabel=label, LatestStreamArn=stream_arn(doc["TableArn"], label))
                else:
                    doc.pop("LatestStreamLabel", None)
                    doc.pop("LatestStreamArn", None)
                replica = Table(t.account, region, t.name, doc)
                if not self.store.create_table(replica):
                    raise v.invalid(f"Failed to create a the new replica of table with name: '{t.name}' because one "
                                    "or more replicas already existed as tables.")
                self.store.copy_items(t, replica)
                regions.append(region)
            elif "Delete" in update:
                region = update["Delete"]["RegionName"]
                if region not in regions or region == t.region:
                    raise v.invalid(f"Failed to remove replica in region {region} for table {t.name}: the replica "
                                    "does not exist")
                regions.remove(region)
                gone = self.store.get_table(t.account, region, t.name)
                if gone is not None:
                    self.store.delete_table(gone)
        for region in regions:
            if region != t.region:
                self._set_replicas(t.account, region, t.name, regions)
        self._set_replicas(t.account, t.region, t.name, regions)
        found = self.store.get_table(t.account, t.region, t.name)
        assert found is not None  # the caller's table
        return found

    def list_tables(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        names = self.store.table_names(ctx.account_id, ctx.region)
        start = params.get("ExclusiveStartTableName")
        if start:
            names = [n for n in names if n > start]
        limit = int(params.get("Limit") or 100)
        out: dict[str, Any] = {"TableNames": names[:limit]}
        if len(names) > limit:
            out["LastEvaluatedTableName"] = names[limit - 1]
        return out

    def update_table(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        if params.get("ReplicaUpdates"):
            t = self._replica_updates(ctx, t, params["ReplicaUpdates"])
        doc = copy.deepcopy(t.doc)
        now = self.store.clock()
        billing = params.get("BillingMode")
        current_billing = "PAY_PER_REQUEST" if doc.get("BillingModeSummary") else "PROVISIONED"
        if billing and billing != current_billing:
            doc["ProvisionedThroughput"] = self._throughput(billing, params.get("ProvisionedThroughput"))
            if billing == "PAY_PER_REQUEST":
                doc["BillingModeSummary"] = {"BillingMode": "PAY_PER_REQUEST"}
                doc["_on_demand_since"] = now
            else:
                doc.pop("BillingModeSummary", None)
            for ix in doc.get("GlobalSecondaryIndexes") or []:
                ix["ProvisionedThroughput"] = self._throughput(billing, None if billing == "PAY_PER_REQUEST" else
                                                               params.get("ProvisionedThroughput"))
        elif params.get("ProvisionedThroughput"):
            if current_billing == "PAY_PER_REQUEST":
                raise v.invalid_param("Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                                      "BillingMode is PAY_PER_REQUEST")
            doc["ProvisionedThroughput"] = self._throughput("PROVISIONED", params["ProvisionedThroughput"])
        defs = {d["AttributeName"]: d for d in doc["AttributeDefinitions"]}
        for d in params.get("AttributeDefinitions") or []:
            defs.setdefault(d["AttributeName"], d)
        mode = "PAY_PER_REQUEST" if doc.get("BillingModeSummary") else "PROVISIONED"
        for update in params.get("GlobalSecondaryIndexUpdates") or []:
            gsis = doc.setdefault("GlobalSecondaryIndexes", [])
            if "Create" in update:
                ix = update["Create"]
                if any(g["IndexName"] == ix["IndexName"] for g in gsis):
                    raise v.invalid_param(f"Index already exists: {ix['IndexName']}")
                for k in ix["KeySchema"]:
                    if k["AttributeName"] not in defs:
                        raise v.invalid_param("Some index key attributes are not defined in AttributeDefinitions. "
                                              f"Keys: [{k['AttributeName']}], AttributeDefinitions: "
                                              f"[{', '.join(sorted(defs))}]")
                gsis.append(self._gsi(ix, mode))
            elif "Delete" in update:
                name = update["Delete"]["IndexName"]
                if not any(g["IndexName"] == name for g in gsis):
                    raise rq.not_found(f"Index: {name} not found")
                doc["GlobalSecondaryIndexes"] = [g for g in gsis if g["IndexName"] != name]
            elif "Update" in update:
                name = update["Update"]["IndexName"]
                for g in gsis:
                    if g["IndexName"] == name and update["Update"].get("ProvisionedThroughput"):
                        g["ProvisionedThroughput"] = self._throughput("PROVISIONED",
                                                                      update["Update"]["ProvisionedThroughput"])
            if not doc.get("GlobalSecondaryIndexes"):
                doc.pop("GlobalSecondaryIndexes", None)
        used = {k["AttributeName"] for k in doc["KeySchema"]}
        for field in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            for ix in doc.get(field) or []:
                used |= {k["AttributeName"] for k in ix["KeySchema"]}
        doc["AttributeDefinitions"] = [d for n, d in defs.items() if n in used]
        self._stream_spec(doc, params.get("StreamSpecification"), now, ctx)
        if "DeletionProtectionEnabled" in params:
            doc["DeletionProtectionEnabled"] = bool(params["DeletionProtectionEnabled"])
        if params.get("TableClass"):
            doc["TableClassSummary"] = {"TableClass": params["TableClass"]}
        self._warm_throughput(doc, params.get("WarmThroughput"))
        sse = params.get("SSESpecification")
        disabled_sse = None
        if sse is not None:
            if sse.get("Enabled"):
                doc["SSEDescription"] = self._sse(ctx, sse)
            else:
                # AWS answers the key being let go (UPDATING) and describes the table without it afterwards.
                disabled_sse = doc.pop("SSEDescription", None)
        new = Table(t.account, t.region, t.name, doc)
        self.store.update_table(t, new)
        described = self.describe(new, "UPDATING")
        if disabled_sse is not None:
            described["SSEDescription"] = {**disabled_sse, "Status": "UPDATING"}
        return {"TableDescription": described}

    # -- tags ---------------------------------------------------------------------------------------

    def _by_arn(self, ctx: RequestContext, arn: str) -> Table:
        name = arn.split(":table/", 1)[-1].split("/", 1)[0] if ":table/" in arn else ""
        found = self.store.get_table(ctx.account_id, ctx.region, name) if name else None
        if found is None or found.arn != arn:
            raise rq.not_found(f"ResourceArn: {arn} not found")
        return found

    def tag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = self._by_arn(ctx, params["ResourceArn"])
        doc = copy.deepcopy(t.doc)
        tags = doc.setdefault("_tags", {})
        tags.update({x["Key"]: x["Value"] for x in params["Tags"]})
        if len(tags) > MAX_TAGS:
            raise AwsError("LimitExceededException", "Too many tags for resource")
        self.store.update_table(t, Table(t.account, t.region, t.name, doc))
        return {}

    def untag_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = self._by_arn(ctx, params["ResourceArn"])
        doc = copy.deepcopy(t.doc)
        for k in params["TagKeys"]:
            doc.setdefault("_tags", {}).pop(k, None)
        self.store.update_table(t, Table(t.account, t.region, t.name, doc))
        return {}

    def list_tags_of_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = self._by_arn(ctx, params["ResourceArn"])
        return {"Tags": [{"Key": k, "Value": val} for k, val in sorted((t.doc.get("_tags") or {}).items())]}

    # -- time to live -------------------------------------------------------------------------------

    def update_time_to_live(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        spec = params["TimeToLiveSpecification"]
        current = t.doc.get("_ttl") or {}
        enabled = bool(spec["Enabled"])
        if enabled and current.get("Enabled"):
            raise v.invalid("TimeToLive is already enabled")
        if not enabled and not current.get("Enabled"):
            raise v.invalid("TimeToLive is already disabled")
        doc = copy.deepcopy(t.doc)
        doc["_ttl"] = {"AttributeName": spec["AttributeName"], "Enabled": enabled}
        self.store.update_table(t, Table(t.account, t.region, t.name, doc))
        return {"TimeToLiveSpecification": {"AttributeName": spec["AttributeName"], "Enabled": enabled}}

    def describe_time_to_live(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        ttl = t.doc.get("_ttl") or {}
        if ttl.get("Enabled"):
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": ttl["AttributeName"]}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}

    # -- account ------------------------------------------------------------------------------------

    def describe_limits(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"AccountMaxReadCapacityUnits": 80000, "AccountMaxWriteCapacityUnits": 80000,
                "TableMaxReadCapacityUnits": 40000, "TableMaxWriteCapacityUnits": 40000}

    def describe_endpoints(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        host = ctx.headers.get("host") or f"dynamodb.{ctx.region}.amazonaws.com"
        return {"Endpoints": [{"Address": host, "CachePeriodInMinutes": 1440}]}

    # Point-in-time recovery is stored and shown (Terraform and CDK set it); Hearth keeps no history.
    def describe_continuous_backups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        return {"ContinuousBackupsDescription": self._backups(t)}

    def update_continuous_backups(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        spec = params["PointInTimeRecoverySpecification"]
        doc = copy.deepcopy(t.doc)
        doc["_pitr"] = {"Enabled": bool(spec["PointInTimeRecoveryEnabled"]),
                        "Days": int(spec.get("RecoveryPeriodInDays") or 35), "Since": self.store.clock()}
        new = Table(t.account, t.region, t.name, doc)
        self.store.update_table(t, new)
        return {"ContinuousBackupsDescription": self._backups(new)}

    def _backups(self, t: Table) -> dict[str, Any]:
        pitr = t.doc.get("_pitr") or {}
        if not pitr.get("Enabled"):
            return {"ContinuousBackupsStatus": "ENABLED",
                    "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}}
        now = self.store.clock()
        return {"ContinuousBackupsStatus": "ENABLED", "PointInTimeRecoveryDescription": {
            "PointInTimeRecoveryStatus": "ENABLED", "RecoveryPeriodInDays": pitr["Days"],
            "EarliestRestorableDateTime": datetime.fromtimestamp(pitr["Since"], UTC),
            "LatestRestorableDateTime": datetime.fromtimestamp(now, UTC)}}

    # -- contributor insights -------------------------------------------------------------------------
    # Stored and reported as AWS does; Hearth publishes no CloudWatch Contributor Insights rules' data.

    def _insights_target(self, ctx: RequestContext, params: dict[str, Any]) -> tuple[Table, str]:
        t = rq.table(self.store, ctx, params["TableName"], detailed=True)
        index = params.get("IndexName") or ""
        if index and t.index(index) is None:
            raise rq.not_found(f"Index: {index} not found for table: {t.name}")
        return t, index

    def _insights(self, t: Table, index: str) -> dict[str, Any]:
        state = (t.doc.get("_insights") or {}).get(index)
        out: dict[str, Any] = {"TableName": t.name}
        if index:
            out["IndexName"] = index
        if not state or state["Status"] == "DISABLED":
            out["ContributorInsightsStatus"] = "DISABLED"
            if state:
                out["LastUpdateDateTime"] = datetime.fromtimestamp(state["Updated"], UTC)
            return out
        prefix = f"DynamoDBContributorInsights-{{}}-{t.name}{'-' + index if index else ''}-{state['Id']}"
        found = t.index(index) if index else None
        has_range = (found.range_key if found is not None else t.range_key) is not None
        kinds = ["PKC", "PKT"] + (["SKC", "SKT"] if has_range else [])
        out.update(ContributorInsightsRuleList=[prefix.format(k) for k in kinds], ContributorInsightsStatus="ENABLED",
                   LastUpdateDateTime=datetime.fromtimestamp(state["Updated"], UTC),
                   ContributorInsightsMode=state["Mode"])
        return out

    def describe_contributor_insights(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t, index = self._insights_target(ctx, params)
        return self._insights(t, index)

    def update_contributor_insights(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        t, index = self._insights_target(ctx, params)
        enable = params["ContributorInsightsAction"] == "ENABLE"
        doc = copy.deepcopy(t.doc)
        now = self.store.clock()
        mode = params.get("ContributorInsightsMode") or "ACCESSED_AND_THROTTLED_KEYS"
        doc.setdefault("_insights", {})[index] = {"Status": "ENABLED" if enable else "DISABLED", "Updated": now,
                                                  "Mode": mode, "Id": int(now * 1000)}
        self.store.update_table(t, Table(t.account, t.region, t.name, doc))
        out: dict[str, Any] = {"TableName": t.name}
        if index:
            out["IndexName"] = index
        out["ContributorInsightsStatus"] = "ENABLING" if enable else "DISABLING"
        if enable:
            out["ContributorInsightsMode"] = mode
        return out

    def list_contributor_insights(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        names = [params["TableName"]] if params.get("TableName") else self.store.table_names(ctx.account_id,
                                                                                              ctx.region)
        summaries = []
        for name in names:
            t = rq.table(self.store, ctx, name, detailed=True)
            for index, state in sorted((t.doc.get("_insights") or {}).items()):
                summary: dict[str, Any] = {"TableName": t.name}
                if index:
                    summary["IndexName"] = index
                summary["ContributorInsightsStatus"] = state["Status"]
                if state["Status"] == "ENABLED":
                    summary["ContributorInsightsMode"] = state["Mode"]
                summaries.append(summary)
        start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
        limit = int(params.get("MaxResults") or 100)
        out: dict[str, Any] = {"ContributorInsightsSummaries": summaries[start:start + limit]}
        if start + limit < len(summaries):
            out["NextToken"] = str(start + limit)
        return out
