"""IAM's service-specific credentials: a user name and password an IAM user gets for one AWS service
that does not take SigV4 (CodeCommit's Git over HTTPS, Amazon Keyspaces' Cassandra drivers, Bedrock's
API keys).

It owns the Create/List/Update/Reset/Delete ServiceSpecificCredential operations, kept in the user's
entity document (so DeleteUser sees them and refuses, as AWS does). Hearth serves none of those services:
the credentials are stored and answered as IAM answers them, never accepted by any Hearth API.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.iam.common import IamOperations, as_datetime, clock_now, no_such_entity
from hearth.services.iam.store import USER, IamStore

# The services AWS issues service-specific credentials for (CreateServiceSpecificCredential's reference).
SERVICES = frozenset({"codecommit.amazonaws.com", "cassandra.amazonaws.com", "bedrock.amazonaws.com"})
CREDENTIALS_PER_SERVICE = 2  # IAM's quota per user and service
_ID = re.compile(r"^\w+$")
_PASSWORD_CHARS = string.ascii_letters + string.digits + "+/="


def _unsupported(service: str) -> AwsError:
    return no_such_entity(f"No such service {service} is supported for Service Specific Credentials")


def _check_id(credential_id: str) -> None:
    # IAM words this without the value, unlike its other pattern errors.
    if not _ID.match(credential_id):
        raise AwsError("ValidationError", "1 validation error detected: Value at 'serviceSpecificCredentialId' failed "
                       "to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+", 400)


class ServiceCredentialsProvider(IamOperations):
    def __init__(self, store: IamStore) -> None:
        super().__init__(store)

    @staticmethod
    def _shape(user: str, account: str, c: dict[str, Any], *, password: bool) -> dict[str, Any]:
        out = {"CreateDate": as_datetime(c["created"]), "ServiceName": c["service"],
               "ServiceSpecificCredentialId": c["id"], "ServiceUserName": f"{user}-at-{account}",
               "Status": c["status"], "UserName": user}
        if password:
            out["ServicePassword"] = c["password"]
        return out

    def create_service_specific_credential(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name, service = params["UserName"], params["ServiceName"]
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, name)
            if service not in SERVICES:
                raise _unsupported(service)
            held = user.setdefault("service_credentials", [])
            if sum(c["service"] == service for c in held) >= CREDENTIALS_PER_SERVICE:
                raise AwsError("LimitExceeded", "Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: "
                               f"{CREDENTIALS_PER_SERVICE}", 409)
            credential = {"id": "ACCA" + base64.b32encode(secrets.token_bytes(10)).decode()[:17],
                          "service": service, "status": "Active", "created": clock_now(),
                          "password": "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(44))}
            held.append(credential)
            IamStore.write(conn, ctx.account_id, USER, name, user)
        return {"ServiceSpecificCredential": self._shape(name, ctx.account_id, credential, password=True)}

    def list_service_specific_credentials(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        service = params.get("ServiceName")
        if service is not None and service not in SERVICES:
            raise _unsupported(service)
        name = self._key_user(ctx, params)
        user = self._get(ctx.account_id, USER, name)
        return {"ServiceSpecificCredentials": [
            self._shape(name, ctx.account_id, c, password=False) for c in user.get("service_credentials", [])
            if service is None or c["service"] == service]}

    def _change(self, ctx: RequestContext, params: dict[str, Any], change: str) -> dict[str, Any] | None:
        credential_id = params["ServiceSpecificCredentialId"]
        _check_id(credential_id)
        name = self._key_user(ctx, params)
        with self._store.tx() as conn:
            user = self._need(conn, ctx.account_id, USER, name)
            held = user.get("service_credentials", [])
            found = next((c for c in held if c["id"] == credential_id), None)
            if found is None:
                raise no_such_entity(f"No such credential {credential_id} exists")
            if change == "delete":
                held.remove(found)
            elif change == "reset":
                found["password"] = "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(44))
            else:
                found["status"] = change
            IamStore.write(conn, ctx.account_id, USER, name, user)
        return found if change == "reset" else None

    def update_service_specific_credential(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("Status") not in ("Active", "Inactive", "Expired"):
            raise AwsError("ValidationError", "1 validation error detected: Value at 'status' failed to satisfy "
                           "constraint: Member must satisfy enum value set", 400)
        self._change(ctx, params, params["Status"])
        return {}

    def reset_service_specific_credential(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        found = self._change(ctx, params, "reset")
        assert found is not None
        return {"ServiceSpecificCredential": self._shape(self._key_user(ctx, params), ctx.account_id, found,
                                                         password=True)}

    def delete_service_specific_credential(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._change(ctx, params, "delete")
        return {}
