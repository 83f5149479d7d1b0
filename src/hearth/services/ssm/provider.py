"""The SSM Parameter Store API (boto3's `ssm` client, json protocol 1.1): one method per operation.

It owns the business rules of parameters — names and hierarchies, types, tiers, allowed patterns,
selectors (`name:version`, `name:label`), labels, paths, filters, pages — and AWS's error codes and
texts. It never writes SQL (`parameters.ParameterStore` does). Only the Parameter Store part of SSM
is served; other SSM operations answer `UnknownOperationException`, except GetMaintenanceWindow,
whose not-found answer the conformance tests read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hearth.aws.context import RequestContext
from hearth.aws.errors import AwsError
from hearth.services.ssm.parameters import NewVersion, ParameterStore, ParameterVersion, VersionLimit

TYPES = ("String", "StringList", "SecureString")
STANDARD_VALUE_LIMIT = 4096
ADVANCED_VALUE_LIMIT = 8192
MAX_HIERARCHY_LEVELS = 15
MAX_NAME_LENGTH = 1011  # AWS counts the ARN's prefix too; see `_check_name_length`
MAX_LABELS_PER_VERSION = 10
MAX_TAGS = 50
SECRETS_PREFIX = "/aws/reference/secretsmanager/"

_NAME_TEXT = ("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it "
              "can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, "
              "numbers and the following 3 symbols .-_")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
_AMI = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def _not_found(message: str = "") -> AwsError:
    # AWS answers a missing parameter with an empty message (recorded).
    return AwsError("ParameterNotFound", message)


def parameter_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}"


def _name_from_arn(text: str) -> str:
    """`arn:aws:ssm:r:a:parameter/x` names `x`; `…:parameter/a/b` names `/a/b` (hierarchies keep their slash)."""
    if not text.startswith("arn:"):
        return text
    resource = text.split(":", 5)[-1]
    rest = resource.removeprefix("parameter/")
    return "/" + rest if "/" in rest else rest


def check_name(name: str, *, creating: bool) -> None:
    """AWS's naming rules; `creating` adds the reserved prefixes and the hierarchy depth."""
    path = name[1:] if name.startswith("/") else name
    segments = path.split("/")
    if ("/" in name and not name.startswith("/")) or any(not _SEGMENT.match(s) for s in segments):
        raise _validation(_NAME_TEXT)
    if creating:
        if segments[0].lower().startswith(("aws", "ssm")):
            raise _validation(_NAME_TEXT)
        if len(segments) > MAX_HIERARCHY_LEVELS:
            raise AwsError("HierarchyLevelLimitExceededException",
                           "A hierarchy can have a maximum of 15 levels. For more information, see "
                           "https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html")


def _paginate(items: list[Any], key: Callable[[Any], str], token: str | None,
              limit: int) -> tuple[list[Any], str | None]:
    """One page after the item named by `token` (a base64 name: stable while items come and go)."""
    start = 0
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise AwsError("InvalidNextToken", "The specified token is not valid.") from None
        start = next((i for i, item in enumerate(items) if key(item) > after), len(items))
    page = items[start:start + limit]
    more = start + limit < len(items)
    return page, (base64.urlsafe_b64encode(key(page[-1]).encode()).decode() if more and page else None)


class SsmProvider:
    def __init__(self, store: ParameterStore) -> None:
        self.store = store

    # -- helpers --------------------------------------------------------------------------------------

    @staticmethod
    def _user(ctx: RequestContext) -> str:
        return f"arn:aws:iam::{ctx.account_id}:root"

    def _opaque(self, p: ParameterVersion) -> str:
        """What a SecureString reads as without decryption: a stable token standing for KMS's ciphertext.

        Hearth has no KMS, so nothing can decrypt it; it never contains the value."""
        digest = hashlib.sha256(f"{p.account}\0{p.region}\0{p.name}\0{p.version}".encode()).digest()
        return base64.b64encode(b"\x01\x02\x03\x00" + digest * 2).decode()

    def _value(self, p: ParameterVersion, decrypt: bool) -> str:
        return p.value if p.type != "SecureString" or decrypt else self._opaque(p)

    def _render(self, p: ParameterVersion, decrypt: bool, selector: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": p.name, "Type": p.type, "Value": self._value(p, decrypt), "Version": p.version,
            "LastModifiedDate": datetime.fromtimestamp(p.modified_at, UTC),
            "ARN": parameter_arn(p.region, p.account, p.name), "DataType": p.data_type,
        }
        if selector is not None:
            out["Selector"] = selector
        return out

    def _metadata(self, p: ParameterVersion) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": p.name, "ARN": parameter_arn(p.region, p.account, p.name), "Type": p.type,
            "LastModifiedDate": datetime.fromtimestamp(p.modified_at, UTC), "LastModifiedUser": p.modified_by,
            "Version": p.version, "Tier": p.tier, "Policies": [_policy(text) for text in p.policies],
            "DataType": p.data_type,
        }
        if p.description:
            out["Description"] = p.description
        if p.allowed_pattern:
            out["AllowedPattern"] = p.allowed_pattern
        if p.key_id:
            out["KeyId"] = p.key_id
        return out

    def _stored_name(self, ctx: RequestContext, name: str) -> str:
        """A top-level name is one parameter with or without its leading slash (`x` and `/x`), as on AWS:
        the spelling it was stored under, when either exists."""
        if self.store.latest(ctx.account_id, ctx.region, name) is not None:
            return name
        other = name[1:] if name.startswith("/") else "/" + name
        if "/" not in other[1:] and self.store.latest(ctx.account_id, ctx.region, other) is not None:
            return other
        return name

    def _find(self, ctx: RequestContext, text: str) -> tuple[ParameterVersion, str | None]:
        """Resolve `name`, an ARN, `name:version` or `name:label` to a stored version and the selector."""
        name, selector = text, None
        # A selector is a last `:part` beyond the name (an ARN has five colons of its own).
        if text.count(":") > (5 if text.startswith("arn:") else 0):
            name, _, tail = text.rpartition(":")
            selector = ":" + tail
        name = _name_from_arn(name)
        if name.startswith(SECRETS_PREFIX):
            raise _not_found(f"Secret {name} not found.")  # Hearth has no Secrets Manager
        check_name(name, creating=False)
        asked, name = name, self._stored_name(ctx, name)
        found, selector = self._version(ctx, name, selector)
        return (replace(found, name=asked) if asked != name else found), selector  # answered as it was asked

    def _version(self, ctx: RequestContext, name: str, selector: str | None) -> tuple[ParameterVersion, str | None]:
        if selector is None:
            latest = self.store.latest(ctx.account_id, ctx.region, name)
            if latest is None:
                raise _not_found()
            return latest, None
        wanted = selector[1:]
        if self.store.latest(ctx.account_id, ctx.region, name) is None:
            raise _not_found()
        if wanted.isdigit():
            found = self.store.version(ctx.account_id, ctx.region, name, int(wanted))
            if found is None:
                raise AwsError("ParameterVersionNotFound", f"Systems Manager could not find version {wanted} of "
                                                           f"{name}. Verify the version and try again.")
            return found, selector
        for version in self.store.history(ctx.account_id, ctx.region, name):
            if wanted in version.labels:
                return version, selector
        raise AwsError("ParameterVersionNotFound", f"Systems Manager could not find label {wanted} of {name}. "
                                                   "Verify the label and try again.")

    def _existing_name(self, ctx: RequestContext, text: str) -> str:
        name = _name_from_arn(text)
        check_name(name, creating=False)
        name = self._stored_name(ctx, name)
        if self.store.latest(ctx.account_id, ctx.region, name) is None:
            raise _not_found()
        return name

    # -- parameters -----------------------------------------------------------------------------------

    def put_parameter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["Name"]).strip()
        if name.startswith("arn:"):
            raise _validation("Parameter name must not be an ARN.")
        check_name(name, creating=True)
        if len(parameter_arn(ctx.region, ctx.account_id, name)) > MAX_NAME_LENGTH:
            raise _validation(f"Parameter name exceeds the maximum length of {MAX_NAME_LENGTH} characters, "
                              "including the ARN's prefix.")
        value = str(params["Value"])
        overwrite = bool(params.get("Overwrite", False))
        tags = {t["Key"]: t["Value"] for t in params.get("Tags") or []}
        if tags and overwrite:
            raise _validation("Invalid request: tags and overwrite can't be used together. To create a parameter "
                              "with tags, please remove overwrite flag. To update tags for an existing parameter, "
                              "please use AddTagsToResource or RemoveTagsFromResource.")
        name = self._stored_name(ctx, name)
        previous = self.store.latest(ctx.account_id, ctx.region, name)
        kind = params.get("Type")
        if kind is None:
            if previous is None:
                raise _validation("A parameter type is required when you create a parameter.")
            kind = previous.type
        if kind not in TYPES:
            raise _validation(f"1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: "
                              "Member must satisfy enum value set: [SecureString, StringList, String]")
        if previous is not None and not overwrite:
            raise AwsError("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the "
                                                     "overwrite option in the request to true.")
        tier = str(params.get("Tier") or (previous.tier if previous else "Standard"))
        if tier == "Intelligent-Tiering":
            tier = "Advanced" if len(value) > STANDARD_VALUE_LIMIT or params.get("Policies") else "Standard"
        if tier == "Standard" and len(value) > STANDARD_VALUE_LIMIT:
            raise _validation("Standard tier parameters support a maximum parameter value of 4096 characters. To "
                              "create a larger parameter value, upgrade the parameter to use the advanced-parameter "
                              "tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/"
                              "userguide/parameter-store-advanced-parameters.html")
        if len(value) > ADVANCED_VALUE_LIMIT:
            raise _validation("Advanced tier parameters support a maximum parameter value of 8192 characters.")
        if previous is not None and previous.tier == "Advanced" and tier == "Standard":
            raise _validation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter "
                              "from the advanced-parameter tier to the standard-parameter tier. If necessary, you "
                              "can delete the advanced parameter and recreate it as a standard parameter.")
        pattern = params.get("AllowedPattern")
        effective_pattern = pattern if pattern is not None else (previous.allowed_pattern if previous else "")
        if effective_pattern:
            try:
                matcher = re.compile(effective_pattern)
            except re.error:
                raise AwsError("InvalidAllowedPatternException",
                               "The allowed pattern is not a valid regular expression.") from None
            if not matcher.fullmatch(value):
                raise AwsError("ParameterPatternMismatchException",
                               f"Parameter value, cannot be validated against allowedPattern: {effective_pattern}")
        data_type = str(params.get("DataType") or (previous.data_type if previous else "text"))
        if data_type not in ("text", "aws:ec2:image", "aws:ssm:integration"):
            raise _validation(f"The following data type is not supported: {data_type} (Data type names are "
                              "all lowercase.)")
        if data_type == "aws:ec2:image" and not _AMI.match(value):
            raise _validation(f"Parameter value {value} does not match the required format for the data type "
                              "aws:ec2:image.")
        if kind == "SecureString" and params.get("KeyId") is None and (previous is None or not previous.key_id):
            key_id: str | None = "alias/aws/ssm"
        else:
            key_id = params.get("KeyId")
        if kind != "SecureString" and params.get("KeyId") is not None:
            raise _validation("KeyId is required for SecureString type parameter only.")
        if len(tags) > MAX_TAGS:
            raise AwsError("TooManyTagsError", "The Tags parameter cannot contain more than 50 tags.")
        policies = None
        if params.get("Policies"):
            try:
                loaded = json.loads(params["Policies"])
            except ValueError:
                raise AwsError("InvalidPolicyTypeException", "The policies are not valid JSON.") from None
            policies = [json.dumps(p) for p in (loaded if isinstance(loaded, list) else [loaded])]
        new = NewVersion(type=str(kind), value=value, description=params.get("Description"),
                         allowed_pattern=pattern, key_id=key_id, tier=tier, data_type=data_type, policies=policies,
                         modified_by=self._user(ctx))
        try:
            number = self.store.put(ctx.account_id, ctx.region, name, new, tags=tags, overwrite=overwrite)
        except VersionLimit as exc:
            raise AwsError("ParameterMaxVersionLimitExceeded",
                           f"You attempted to create a new version of {name} by calling the PutParameter API with "
                           f"the overwrite flag. Version {exc.args[0]}, the oldest version, can't be deleted because "
                           "it has a label associated with it. Move the label to another version of the parameter, "
                           "and try again.") from None
        if number is None:  # created concurrently since the check above
            raise AwsError("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the "
                                                     "overwrite option in the request to true.")
        return {"Version": number, "Tier": tier}

    def get_parameter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = str(params["Name"])
        decrypt = bool(params.get("WithDecryption", False))
        if _name_from_arn(name).startswith(SECRETS_PREFIX) and not decrypt:
            raise _validation("WithDecryption flag must be True for retrieving a Secret Manager secret.")
        found, selector = self._find(ctx, name)
        return {"Parameter": self._render(found, decrypt, selector)}

    def get_parameters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        decrypt = bool(params.get("WithDecryption", False))
        found: list[dict[str, Any]] = []
        invalid: list[str] = []
        for name in dict.fromkeys(params["Names"]):  # duplicates are answered once
            try:
                version, selector = self._find(ctx, name)
            except AwsError as err:
                if err.code in ("ParameterNotFound", "ParameterVersionNotFound"):
                    invalid.append(name)
                    continue
                raise
            found.append(self._render(version, decrypt, selector))
        return {"Parameters": found, "InvalidParameters": invalid}

    def get_parameters_by_path(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        path = str(params["Path"])
        if not path.startswith("/"):
            raise _validation("The parameter doesn't meet the parameter name requirements. The parameter name "
                              "must begin with a forward slash \"/\".")
        check_name(path.rstrip("/") or "/x", creating=False)
        recursive = bool(params.get("Recursive", False))
        decrypt = bool(params.get("WithDecryption", False))
        filters = params.get("ParameterFilters") or []
        for f in filters:
            if f["Key"] in ("tag", "DataType", "Name", "Path", "Tier") or f["Key"].startswith("tag:"):
                raise AwsError("InvalidFilterKey", f"The following filter key is not valid: {f['Key']}. Valid filter "
                                                   "keys include: [Type, KeyId, Label].")
            if f["Key"] == "Label" and f.get("Option", "Equals") != "Equals":
                raise AwsError("InvalidFilterOption", "The following filter option is not valid: "
                                                      f"{f.get('Option')}. Valid options include: [Equals].")
        prefix = path.rstrip("/") + "/"
        chosen: list[ParameterVersion] = []
        for p in self.store.all_latest(ctx.account_id, ctx.region):
            if not p.name.startswith(prefix) or (not recursive and "/" in p.name[len(prefix):]):
                continue
            version: ParameterVersion | None = p
            for f in filters:
                version = self._apply_filter(version, f) if version is not None else None
            if version is not None:
                chosen.append(version)
        limit = int(params.get("MaxResults") or 10)
        page, token = _paginate(chosen, lambda p: p.name, params.get("NextToken"), limit)
        out: dict[str, Any] = {"Parameters": [self._render(p, decrypt) for p in page]}
        if token:
            out["NextToken"] = token
        return out

    def _apply_filter(self, p: ParameterVersion, f: dict[str, Any]) -> ParameterVersion | None:
        """The version of `p` the filter selects (a Label filter selects the labelled version), or None."""
        values = [str(v) for v in f.get("Values") or []]
        option = f.get("Option", "Equals")
        if f["Key"] == "Label":
            for version in self.store.history(p.account, p.region, p.name):
                if any(label in version.labels for label in values):
                    return version
            return None
        field = {"Type": p.type, "KeyId": p.key_id}.get(f["Key"], "")
        return p if _matches(field, values, option) else None

    def delete_parameter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._existing_name(ctx, str(params["Name"]))
        self.store.delete(ctx.account_id, ctx.region, [name])
        return {}

    def delete_parameters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        names = [_name_from_arn(str(n)) for n in params["Names"]]
        deleted = self.store.delete(ctx.account_id, ctx.region, names)
        return {"DeletedParameters": deleted, "InvalidParameters": [n for n in names if n not in deleted]}

    def describe_parameters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        legacy = params.get("Filters") or []
        filters = params.get("ParameterFilters") or []
        if legacy and filters:
            raise _validation("You can use either Filters or ParameterFilters in a single request.")
        filters = filters or [{"Key": f["Key"], "Option": "Equals", "Values": f["Values"]} for f in legacy]
        for f in filters:
            key = f["Key"]
            if key == "Label":
                raise AwsError("InvalidFilterKey", "The following filter key is not valid: Label. Valid filter keys "
                                                   "include: [Path, Name, Type, KeyId, Tier, DataType].")
            if key == "Path" and f.get("Option", "OneLevel") not in ("Recursive", "OneLevel"):
                raise AwsError("InvalidFilterOption", f"The following filter option is not valid: {f.get('Option')}. "
                                                      "Valid options include: [Recursive, OneLevel].")
        chosen = [p for p in self.store.all_latest(ctx.account_id, ctx.region)
                  if all(self._describe_match(ctx, p, f) for f in filters)]
        limit = int(params.get("MaxResults") or 50)
        page, token = _paginate(chosen, lambda p: p.name, params.get("NextToken"), limit)
        out: dict[str, Any] = {"Parameters": [self._metadata(p) for p in page]}
        if token:
            out["NextToken"] = token
        return out

    def _describe_match(self, ctx: RequestContext, p: ParameterVersion, f: dict[str, Any]) -> bool:
        key: str = f["Key"]
        values = [str(v) for v in f.get("Values") or []]
        option = f.get("Option")
        if key == "Path":
            prefixes = [v.rstrip("/") + "/" for v in values] or ["/"]
            for prefix in prefixes:
                rest = p.name[len(prefix):] if p.name.startswith(prefix) else None
                if rest is not None and (option == "Recursive" or "/" not in rest):
                    return True
            return False
        if key.startswith("tag:"):
            tags = self.store.tags(p.account, p.region, p.name)
            return key[4:] in tags and (not values or tags[key[4:]] in values)
        if key == "Name":
            # Names match with or without their leading slash, as AWS's console searches them.
            candidates = {p.name, p.name.lstrip("/")}
            return any(_matches(c, [v.lstrip("/") if not p.name.startswith("/") else v for v in values],
                                option or "Equals") for c in candidates)
        field = {"Type": p.type, "KeyId": p.key_id, "Tier": p.tier, "DataType": p.data_type}.get(key)
        if field is None:
            raise AwsError("InvalidFilterKey", f"The following filter key is not valid: {key}. Valid filter keys "
                                               "include: [Path, Name, Type, KeyId, Tier, DataType].")
        return _matches(field, values, option or "Equals")

    def get_parameter_history(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._existing_name(ctx, str(params["Name"]))
        decrypt = bool(params.get("WithDecryption", False))
        versions = self.store.history(ctx.account_id, ctx.region, name)
        limit = int(params.get("MaxResults") or 50)
        page, token = _paginate(versions, lambda v: f"{v.version:010d}", params.get("NextToken"), limit)
        out: dict[str, Any] = {"Parameters": [{**self._metadata(v), "Value": self._value(v, decrypt),
                                               "Labels": v.labels} for v in page]}
        for item in out["Parameters"]:
            item.pop("ARN", None)  # ParameterHistory has no ARN member
        if token:
            out["NextToken"] = token
        return out

    # -- labels -----------------------------------------------------------------------------------------

    def _target_version(self, ctx: RequestContext, name: str, version: int | None) -> ParameterVersion:
        found = (self.store.latest(ctx.account_id, ctx.region, name) if version is None
                 else self.store.version(ctx.account_id, ctx.region, name, version))
        if found is None:
            raise AwsError("ParameterVersionNotFound", f"Systems Manager could not find version {version} of {name}. "
                                                       "Verify the version and try again.")
        return found

    def label_parameter_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._existing_name(ctx, str(params["Name"]))
        target = self._target_version(ctx, name, params.get("ParameterVersion"))
        labels = [str(label) for label in params["Labels"]]
        invalid = [label for label in labels if not _valid_label(label)]
        valid = [label for label in labels if label not in invalid]
        if len(set(target.labels) | set(valid)) > MAX_LABELS_PER_VERSION:
            raise AwsError("ParameterVersionLabelLimitExceeded",
                           "A parameter version can have maximum 10 labels.Move one or more labels to another "
                           "version and try again.")
        if valid:
            self.store.label(ctx.account_id, ctx.region, name, target.version, valid)
        return {"InvalidLabels": invalid, "ParameterVersion": target.version}

    def unlabel_parameter_version(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._existing_name(ctx, str(params["Name"]))
        target = self._target_version(ctx, name, int(params["ParameterVersion"]))
        labels = [str(label) for label in params["Labels"]]
        missing = self.store.unlabel(ctx.account_id, ctx.region, name, target.version, labels)
        return {"RemovedLabels": [label for label in labels if label not in missing], "InvalidLabels": missing}

    # -- tags -------------------------------------------------------------------------------------------

    def _tagged(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        if params["ResourceType"] != "Parameter":
            raise AwsError("InvalidResourceType", "The resource type is not valid. Valid resource types include: "
                                                  "Parameter.")
        name = _name_from_arn(str(params["ResourceId"]))
        if self.store.latest(ctx.account_id, ctx.region, name) is None:
            raise AwsError("InvalidResourceId", "The resource ID is not valid. Verify the ID and try again.")
        return name

    def add_tags_to_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._tagged(ctx, params)
        tags = {t["Key"]: t["Value"] for t in params["Tags"]}
        if len(set(self.store.tags(ctx.account_id, ctx.region, name)) | set(tags)) > MAX_TAGS:
            raise AwsError("TooManyTagsError", "The Tags parameter cannot contain more than 50 tags.")
        self.store.add_tags(ctx.account_id, ctx.region, name, tags)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._tagged(ctx, params)
        tags = self.store.tags(ctx.account_id, ctx.region, name)
        return {"TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def remove_tags_from_resource(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = self._tagged(ctx, params)
        self.store.remove_tags(ctx.account_id, ctx.region, name, [str(k) for k in params["TagKeys"]])
        return {}

    # -- the rest of SSM --------------------------------------------------------------------------------

    def get_maintenance_window(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        raise AwsError("DoesNotExistException", f"Maintenance window {params['WindowId']} does not exist")


def _matches(field: str, values: Iterable[str], option: str) -> bool:
    values = list(values)
    if option == "BeginsWith":
        return any(field.startswith(v) for v in values)
    if option == "Contains":
        return any(v in field for v in values)
    return field in values


def _valid_label(label: str) -> bool:
    """AWS's label rules: letters, digits, `._-`, at most 100; not starting with a digit, `aws` or `ssm`."""
    return bool(_LABEL.match(label)) and not label[0].isdigit() and not label.lower().startswith(("aws", "ssm"))


def _policy(text: str) -> dict[str, Any]:
    document = json.loads(text)
    kind = document.get("Type", "") if isinstance(document, dict) else ""
    return {"PolicyText": text, "PolicyType": kind, "PolicyStatus": "Pending"}
