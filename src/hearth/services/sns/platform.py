"""SNS's mobile-push and SMS settings as plain storage: platform applications, their endpoints, the
account's SMS attributes and phone-number opt-outs.

It owns the rows of `sns_platform_apps`, `sns_platform_endpoints` and `sns_sms_attributes` (in the
"sns" component database, migrations in `topics.py`) and the validation AWS applies to them, with
AWS's texts. It never talks to a push service (APNs, FCM, ADM...) or sends a text message: Hearth
holds no platform credentials it could check, so it stores what it is given and reports it back.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hearth.aws.errors import AwsError
from hearth.store.component import ComponentDb

PLATFORMS = ("ADM", "APNS", "APNS_SANDBOX", "APNS_VOIP", "APNS_VOIP_SANDBOX", "BAIDU", "GCM", "MACOS",
             "MACOS_SANDBOX", "MPNS", "WNS")
SMS_ATTRIBUTES = ("MonthlySpendLimit", "DeliveryStatusIAMRole", "DeliveryStatusSuccessSamplingRate",
                  "DefaultSenderID", "DefaultSMSType", "UsageReportS3Bucket")
# An E.164-like number as SNS takes it for SMS: an optional '+' and up to 15 digits.
PHONE_NUMBER = re.compile(r"^\+?[0-9]{1,15}$")
_APP_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# A secret the API takes but never answers back.
_SECRET_ATTRIBUTES = ("PlatformCredential",)


def _invalid(what: str) -> AwsError:
    return AwsError("InvalidParameter", f"Invalid parameter: {what}", 400)


def app_not_found() -> AwsError:
    return AwsError("NotFound", "PlatformApplication does not exist", 404)


def endpoint_not_found() -> AwsError:
    return AwsError("NotFound", "Endpoint does not exist", 404)


@dataclass(frozen=True)
class PlatformApplication:
    arn: str
    account: str
    region: str
    name: str
    platform: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class PlatformEndpoint:
    arn: str
    app_arn: str
    token: str
    attributes: dict[str, str]


class PlatformService:
    """Platform applications, endpoints and SMS settings of every account, in the SNS database."""

    def __init__(self, db: ComponentDb, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # -- platform applications --------------------------------------------------------------------

    def create_application(self, account: str, region: str, name: str, platform: str,
                           attributes: dict[str, str]) -> PlatformApplication:
        if not name:
            raise _invalid(" Reason: cannot be empty")  # sic: AWS names the (empty) value, then the reason
        if len(name) > 256:
            raise _invalid(f"{name} Reason: must be at most 256 characters long")
        if not _APP_NAME.match(name):
            raise _invalid(f"{name} Reason: must contain only characters 'a'-'z', 'A'-'Z', '0'-'9', '_', '-', "
                           "and '.'")
        if platform not in PLATFORMS:
            raise _invalid(f"Platform Reason: {platform} is not supported")
        _check_credentials(attributes)
        arn = f"arn:aws:sns:{region}:{account}:app/{platform}/{name}"
        with self.db.tx() as db:
            db.execute("INSERT INTO sns_platform_apps (arn, account, region, name, platform, attributes, created) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (arn) DO UPDATE SET attributes = excluded.attributes",
                       (arn, account, region, name, platform, json.dumps(attributes), self.clock()))
        return self.application(account, arn)

    def application(self, account: str, arn: str) -> PlatformApplication:
        _arn_parts(arn, "PlatformApplicationArn")
        rows = self.db.query("SELECT * FROM sns_platform_apps WHERE arn = ? AND account = ?", (arn, account))
        if not rows:
            raise app_not_found()
        row = rows[0]
        return PlatformApplication(arn=row["arn"], account=row["account"], region=row["region"], name=row["name"],
                                   platform=row["platform"], attributes=json.loads(row["attributes"]))

    def applications(self, account: str, region: str) -> list[PlatformApplication]:
        rows = self.db.query("SELECT arn FROM sns_platform_apps WHERE account = ? AND region = ? ORDER BY arn",
                             (account, region))
        return [self.application(account, r["arn"]) for r in rows]

    @staticmethod
    def application_attributes(app: PlatformApplication) -> dict[str, str]:
        shown = {k: v for k, v in app.attributes.items() if k not in _SECRET_ATTRIBUTES}
        return {"Enabled": "true", **shown}

    def set_application_attributes(self, account: str, arn: str, attributes: dict[str, str]) -> None:
        app = self.application(account, arn)
        merged = {**app.attributes, **attributes}
        _check_credentials(merged)
        with self.db.tx() as db:
            db.execute("UPDATE sns_platform_apps SET attributes = ? WHERE arn = ?", (json.dumps(merged), arn))

    def delete_application(self, account: str, arn: str) -> None:
        with self.db.tx() as db:
            db.execute("DELETE FROM sns_platform_endpoints WHERE app_arn = ? AND app_arn IN "
                       "(SELECT arn FROM sns_platform_apps WHERE account = ?)", (arn, account))
            db.execute("DELETE FROM sns_platform_apps WHERE arn = ? AND account = ?", (arn, account))

    # -- endpoints --------------------------------------------------------------------------------

    def create_endpoint(self, account: str, app_arn: str, token: str, custom_data: str | None,
                        attributes: dict[str, str]) -> PlatformEndpoint:
        app = self.application(account, app_arn)
        wanted = {**attributes}
        if custom_data is not None:
            wanted["CustomUserData"] = custom_data
        for existing in self.endpoints(account, app.arn):
            if existing.token == token:
                # The same token again: the same endpoint, unless other attributes were asked for (AWS).
                if any(existing.attributes.get(k) != v for k, v in wanted.items()):
                    raise _invalid(f"Token Reason: Endpoint {existing.arn} already exists with the same Token, "
                                   "but different attributes.")
                return existing
        arn = f"arn:aws:sns:{app.region}:{account}:endpoint/{app.platform}/{app.name}/{uuid.uuid4()}"
        stored = {"Enabled": "true", **wanted, "Token": token}
        with self.db.tx() as db:
            db.execute("INSERT INTO sns_platform_endpoints (arn, app_arn, token, attributes, created) "
                       "VALUES (?, ?, ?, ?, ?)", (arn, app.arn, token, json.dumps(stored), self.clock()))
        return self.endpoint(account, arn)

    def endpoint(self, account: str, arn: str) -> PlatformEndpoint:
        parts = _arn_parts(arn, "EndpointArn")
        if len(parts[5].split("/")) != 4:
            raise _invalid("EndpointArn Reason: Wrong number of slashes in relative portion of the ARN.")
        rows = self.db.query("SELECT * FROM sns_platform_endpoints WHERE arn = ?", (arn,))
        if not rows or parts[4] != account:
            raise endpoint_not_found()
        row = rows[0]
        return PlatformEndpoint(arn=row["arn"], app_arn=row["app_arn"], token=row["token"],
                                attributes=json.loads(row["attributes"]))

    def endpoints(self, account: str, app_arn: str) -> list[PlatformEndpoint]:
        app = self.application(account, app_arn)
        rows = self.db.query("SELECT arn FROM sns_platform_endpoints WHERE app_arn = ? ORDER BY created, arn",
                             (app.arn,))
        return [self.endpoint(account, r["arn"]) for r in rows]

    def set_endpoint_attributes(self, account: str, arn: str, attributes: dict[str, str]) -> None:
        endpoint = self.endpoint(account, arn)
        merged = {**endpoint.attributes, **attributes}
        with self.db.tx() as db:
            db.execute("UPDATE sns_platform_endpoints SET attributes = ?, token = ? WHERE arn = ?",
                       (json.dumps(merged), merged.get("Token", endpoint.token), arn))

    def delete_endpoint(self, account: str, arn: str) -> None:
        if arn.split(":")[4:5] != [account]:
            return  # deleting an endpoint that is not there succeeds (AWS)
        with self.db.tx() as db:
            db.execute("DELETE FROM sns_platform_endpoints WHERE arn = ?", (arn,))

    # -- SMS --------------------------------------------------------------------------------------

    def sms_attributes(self, account: str, region: str) -> dict[str, str]:
        rows = self.db.query("SELECT attributes FROM sns_sms_attributes WHERE account = ? AND region = ?",
                             (account, region))
        stored: dict[str, str] = json.loads(rows[0]["attributes"]) if rows else {}
        return stored

    def set_sms_attributes(self, account: str, region: str, attributes: dict[str, str]) -> None:
        for key, value in attributes.items():
            if key not in SMS_ATTRIBUTES:
                raise AwsError("InvalidParameter", f"{key} is not a valid attribute", 400)
            if key == "DefaultSMSType" and value not in ("Promotional", "Transactional"):
                raise AwsError("InvalidParameter", "DefaultSMSType is invalid", 400)
            if key == "DefaultSenderID" and (len(value) > 11 or not re.match(r"^(?=.*[A-Za-z])[A-Za-z0-9-]+$",
                                                                            value)):
                raise AwsError("InvalidParameter", "DefaultSenderID is invalid", 400)
        merged = {**self.sms_attributes(account, region), **attributes}
        with self.db.tx() as db:
            db.execute("INSERT INTO sns_sms_attributes (account, region, attributes) VALUES (?, ?, ?) "
                       "ON CONFLICT (account, region) DO UPDATE SET attributes = excluded.attributes",
                       (account, region, json.dumps(merged)))


def check_phone_number(number: str) -> None:
    """OptInPhoneNumber's and CheckIfPhoneNumberIsOptedOut's check of a number, with AWS's text."""
    if not PHONE_NUMBER.match(number):
        raise _invalid("PhoneNumber Reason: input incorrectly formatted")


def _check_credentials(attributes: dict[str, Any]) -> None:
    principal, credential = "PlatformPrincipal" in attributes, "PlatformCredential" in attributes
    if principal and not credential:
        raise _invalid("Attributes Reason: PlatformPrincipal attribute provided without PlatformCredential")
    if credential and not principal:
        raise _invalid("Attributes Reason: PlatformCredential attribute provided without PlatformPrincipal")


def _arn_parts(arn: str, param: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) < 6:
        raise _invalid(f"{param} Reason: An ARN must have at least 6 elements, not {len(arn.split(':'))}")
    return parts
