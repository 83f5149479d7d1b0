"""The AWS KMS API (boto3's `kms` client, json protocol 1.1) for the AWS managed keys Hearth's services
use: DescribeKey, ListKeys, ListAliases. One method per operation.

It owns how a key is named in a request (key id, key ARN, alias name, alias ARN) and AWS's answers and
error texts for these keys. Customer managed keys, key material and cryptographic operations are not
served (every other operation answers `UnknownOperationException`): Hearth encrypts nothing with KMS.
It never writes SQL (`keys.KeyRegistry` does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.kms.keys import KeyRegistry, ManagedKey

ALIAS_PREFIX = "alias/aws/"


class KmsProvider:
    def __init__(self, keys: KeyRegistry) -> None:
        self.keys = keys

    def _key(self, ctx: RequestContext, name: str) -> ManagedKey:
        arn_prefix = f"arn:aws:kms:{ctx.region}:{ctx.account_id}:"
        local = name[len(arn_prefix):] if name.startswith(arn_prefix) else name
        found: ManagedKey | None = None
        if local.startswith(ALIAS_PREFIX):
            found = self.keys.by_service(ctx.account_id, ctx.region, local[len(ALIAS_PREFIX):])
            if found is None:
                raise AwsError("NotFoundException", f"Alias {arn_prefix}{local} is not found.")
        elif not local.startswith(("alias/", "arn:")):
            found = self.keys.by_id(ctx.account_id, ctx.region, local.removeprefix("key/"))
        if found is None:
            if local.startswith("alias/"):
                raise AwsError("NotFoundException", f"Alias {arn_prefix}{local} is not found.")
            arn = local if local.startswith("arn:") else f"{arn_prefix}key/{local.removeprefix('key/')}"
            raise AwsError("NotFoundException", f"Key '{arn}' does not exist")
        return found

    def describe_key(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        key = self._key(ctx, params["KeyId"])
        return {"KeyMetadata": {
            "AWSAccountId": key.account, "KeyId": key.key_id, "Arn": key.arn,
            "CreationDate": datetime.fromtimestamp(key.created, UTC), "Enabled": True,
            "Description": key.description, "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled",
            "Origin": "AWS_KMS", "KeyManager": "AWS", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
        }}

    def list_keys(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in self.keys.all(ctx.account_id, ctx.region)],
                "Truncated": False}

    def list_aliases(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        keys = self.keys.all(ctx.account_id, ctx.region)
        wanted = params.get("KeyId")
        if wanted:
            keys = [self._key(ctx, wanted)]
        return {"Aliases": [{"AliasName": k.alias, "AliasArn": f"arn:aws:kms:{k.region}:{k.account}:{k.alias}",
                             "TargetKeyId": k.key_id, "CreationDate": datetime.fromtimestamp(k.created, UTC),
                             "LastUpdatedDate": datetime.fromtimestamp(k.created, UTC)}
                            for k in sorted(keys, key=lambda k: k.alias)],
                "Truncated": False}
