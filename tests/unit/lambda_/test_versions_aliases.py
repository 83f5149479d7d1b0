"""Published versions and aliases through the providers: shapes, rules and AWS's recorded messages."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.unit.lambda_.helpers import ACCOUNT, APP, Env, build, ctx, make_zip

from hearth.aws.errors import AwsError
from hearth.aws.protocols import rest_json
from hearth.functions.errors import FunctionsError
from hearth.services.lambda_.errors import to_aws

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
REGION = "us-east-1"


def err(exc: pytest.ExceptionInfo[AwsError] | pytest.ExceptionInfo[FunctionsError]) -> tuple[str, str, int]:
    """(code, message, status) as the caller sees it (a domain error as the Lambda providers map it)."""
    value = exc.value if isinstance(exc.value, AwsError) else to_aws(exc.value)
    return value.code, value.message, value.status


class Draws:
    """A steerable random source: returns the queued values, then 0.99."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __call__(self) -> float:
        return self.values.pop(0) if self.values else 0.99


@pytest.fixture
async def draws_env(tmp_path: Path) -> AsyncIterator[tuple[Env, Draws]]:
    draws = Draws()
    e = build(tmp_path / "data", draw=draws)
    await e.functions.recover()
    yield e, draws
    await e.functions.close()
    e.store.close()


async def two_versions(env: Env, name: str = "fn") -> None:
    await env.create(name, Environment={"Variables": {"V": "1"}})
    await env.settle()
    env.versions.publish_version(ctx(), {"FunctionName": name})
    env.provider.update_function_configuration(ctx(), {"FunctionName": name, "Environment": {"Variables": {"V": "2"}}})
    await env.settle()
    env.versions.publish_version(ctx(), {"FunctionName": name})


async def test_publish_snapshots_latest_and_repeats_return_the_same_version(env: Env) -> None:
    await env.create("p", Description="latest text")
    await env.settle()
    latest = env.provider.get_function(ctx(), {"FunctionName": "p"})["Configuration"]
    v1 = env.versions.publish_version(ctx(), {"FunctionName": "p", "Description": "first"})
    assert (v1["Version"], v1["FunctionArn"], v1["Description"]) == ("1", f"{ARN}:p:1", "first")
    assert (v1["State"], v1["LastUpdateStatus"]) == ("Active", "Successful")
    assert v1["RevisionId"] != latest["RevisionId"] and v1["CodeSha256"] == latest["CodeSha256"]
    again = env.versions.publish_version(ctx(), {"FunctionName": "p"})
    assert again == v1  # nothing changed: AWS answers with the newest version
    unchanged = env.provider.get_function(ctx(), {"FunctionName": "p"})["Configuration"]
    # Publishing gives $LATEST a new RevisionId, as AWS (LocalStack's test_function_revisions_version_and_alias)
    assert unchanged["RevisionId"] != latest["RevisionId"] and unchanged["LastModified"] == latest["LastModified"]
    env.provider.update_function_configuration(ctx(), {"FunctionName": "p", "Timeout": 9})
    await env.settle()
    v2 = env.versions.publish_version(ctx(), {"FunctionName": "p"})
    assert (v2["Version"], v2["Timeout"], v2["Description"]) == ("2", 9, "latest text")
    got = env.provider.get_function(ctx(), {"FunctionName": "p", "Qualifier": "1"})["Configuration"]
    assert (got["Timeout"], got["FunctionArn"], got["Version"]) == (3, f"{ARN}:p:1", "1")
    latest_q = env.provider.get_function_configuration(ctx(), {"FunctionName": f"{ARN}:p:$LATEST"})
    assert latest_q["FunctionArn"] == f"{ARN}:p:$LATEST" and latest_q["Version"] == "$LATEST"


async def test_publish_preconditions_have_aws_messages(env: Env) -> None:
    await env.create("pre")
    await env.settle()
    with pytest.raises(AwsError) as exc:
        env.versions.publish_version(ctx(), {"FunctionName": "pre", "RevisionId": "nope"})
    assert err(exc)[0::2] == ("PreconditionFailedException", 412)
    assert "Call the GetFunction/GetAlias API" in exc.value.message
    sha = env.provider.get_function(ctx(), {"FunctionName": "pre"})["Configuration"]["CodeSha256"]
    with pytest.raises(AwsError) as exc:
        env.versions.publish_version(ctx(), {"FunctionName": "pre", "CodeSha256": "somenonexistentsha256"})
    assert err(exc) == (
        "InvalidParameterValueException",
        f"CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST ({sha}). "
        "Please try again with the CodeSHA256 in $LATEST.",
        400,
    )
    ok = env.versions.publish_version(ctx(), {"FunctionName": "pre", "CodeSha256": sha})
    assert ok["Version"] == "1"


async def test_version_numbers_are_never_reused_and_listing_is_ordered(env: Env) -> None:
    await env.create("n")
    await env.settle()
    for timeout in range(4, 15):  # 11 versions: "10" and "11" must sort after "9"
        env.provider.update_function_configuration(ctx(), {"FunctionName": "n", "Timeout": timeout})
        await env.settle()
        env.versions.publish_version(ctx(), {"FunctionName": "n"})
    listed = env.versions.list_versions_by_function(ctx(), {"FunctionName": "n"})["Versions"]
    assert [v["Version"] for v in listed] == ["$LATEST", *[str(i) for i in range(1, 12)]]
    assert listed[0]["FunctionArn"] == f"{ARN}:n:$LATEST" and "State" not in listed[0]
    page = env.versions.list_versions_by_function(ctx(), {"FunctionName": "n", "MaxItems": 5})
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1", "2", "3", "4"]
    rest = env.versions.list_versions_by_function(ctx(), {"FunctionName": "n", "Marker": page["NextMarker"]})
    assert rest["Versions"][0]["Version"] == "5" and "NextMarker" not in rest
    env.provider.delete_function(ctx(), {"FunctionName": "n", "Qualifier": "11"})
    env.provider.update_function_configuration(ctx(), {"FunctionName": "n", "Timeout": 60})
    await env.settle()
    assert env.versions.publish_version(ctx(), {"FunctionName": "n"})["Version"] == "12"
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(), {"FunctionName": "n", "Qualifier": "11"})
    assert err(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}:n:11", 404)


async def test_delete_rules(env: Env) -> None:
    await two_versions(env, "d")
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(), {"FunctionName": "d", "Qualifier": "$LATEST"})
    assert exc.value.message == "$LATEST version cannot be deleted without deleting the function."
    # A version that does not exist, of a function that does: idempotent, as AWS (LocalStack's
    # AWS-validated test_delete_on_nonexisting_version).
    assert env.provider.delete_function(ctx(), {"FunctionName": "d", "Qualifier": "7"}) == {"StatusCode": 204}
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(), {"FunctionName": "gone", "Qualifier": "$LATEST"})
    assert err(exc)[0] == "InvalidParameterValueException"
    env.versions.create_alias(ctx(), {"FunctionName": "d", "Name": "live", "FunctionVersion": "1"})
    with pytest.raises(AwsError) as exc:
        env.provider.delete_function(ctx(), {"FunctionName": f"{ARN}:d:1"})
    assert err(exc)[0::2] == ("ResourceConflictException", 409) and "[live]" in exc.value.message
    env.provider.delete_function(ctx(), {"FunctionName": "d", "Qualifier": "2"})
    versions = env.versions.list_versions_by_function(ctx(), {"FunctionName": "d"})["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1"]


async def test_publish_on_create_and_on_update_code(env: Env) -> None:
    created = await env.create("pub", Publish=True)
    assert (created["Version"], created["FunctionArn"], created["State"]) == ("1", f"{ARN}:pub", "Pending")
    await env.settle()
    v1 = env.provider.get_function_configuration(ctx(), {"FunctionName": "pub", "Qualifier": "1"})
    assert (v1["State"], v1["LastUpdateStatus"]) == ("Active", "Successful")
    code = make_zip({"app.py": APP + "# v2\n"})
    updated = await env.provider.update_function_code(ctx(), {"FunctionName": "pub", "ZipFile": code, "Publish": True})
    assert (updated["Version"], updated["FunctionArn"], updated["State"]) == ("2", f"{ARN}:pub:2", "Pending")
    assert "LastUpdateStatus" not in updated
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
    await env.settle()
    fv = env.functions.resolve(ACCOUNT, REGION, "pub", "2")
    assert (fv.version, fv.state, fv.code_sha256) == ("2", "Active", hashlib.sha256(code).hexdigest())
    assert env.functions.resolve(ACCOUNT, REGION, "pub", "1").code_sha256 != fv.code_sha256


async def test_alias_lifecycle_shapes(env: Env) -> None:
    await two_versions(env, "a")
    created = env.versions.create_alias(ctx(), {
        "FunctionName": "a", "Name": "live", "FunctionVersion": "1", "Description": "custom-alias",
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
    })
    assert created == {
        "AliasArn": f"{ARN}:a:live", "Name": "live", "FunctionVersion": "1", "Description": "custom-alias",
        "RevisionId": created["RevisionId"], "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
    }
    assert env.versions.get_alias(ctx(), {"FunctionName": "a", "Name": "live"}) == created
    env.versions.create_alias(ctx(), {"FunctionName": "a", "Name": "empty", "FunctionVersion": "2",
                                      "RoutingConfig": {"AdditionalVersionWeights": {}}})
    plain = env.versions.get_alias(ctx(), {"FunctionName": "a", "Name": "empty"})
    assert "RoutingConfig" not in plain and plain["Description"] == ""
    by_alias = env.provider.get_function(ctx(), {"FunctionName": f"{ARN}:a:live"})["Configuration"]
    assert (by_alias["FunctionArn"], by_alias["Version"]) == (f"{ARN}:a:live", "1")
    updated = env.versions.update_alias(ctx(), {"FunctionName": "a", "Name": "live",
                                                "RoutingConfig": {"AdditionalVersionWeights": {}}})
    assert "RoutingConfig" not in updated and updated["RevisionId"] != created["RevisionId"]
    assert updated["Description"] == "custom-alias"
    with pytest.raises(AwsError) as exc:
        env.versions.update_alias(ctx(), {"FunctionName": "a", "Name": "live", "FunctionVersion": "2",
                                          "RevisionId": created["RevisionId"]})
    assert err(exc)[0::2] == ("PreconditionFailedException", 412)
    listed = env.versions.list_aliases(ctx(), {"FunctionName": "a"})["Aliases"]
    assert [a["Name"] for a in listed] == ["empty", "live"]
    only_2 = env.versions.list_aliases(ctx(), {"FunctionName": "a", "FunctionVersion": "2"})["Aliases"]
    assert [a["Name"] for a in only_2] == ["empty"]
    env.versions.delete_alias(ctx(), {"FunctionName": "a", "Name": "live"})
    env.versions.delete_alias(ctx(), {"FunctionName": "a", "Name": "live"})  # missing: still 204, as AWS
    with pytest.raises(AwsError) as exc:
        env.versions.get_alias(ctx(), {"FunctionName": "a", "Name": "live"})
    assert err(exc) == ("ResourceNotFoundException", f"Cannot find alias arn: {ARN}:a:live", 404)
    with pytest.raises(AwsError) as exc:
        env.versions.update_alias(ctx(), {"FunctionName": "a", "Name": "non-existent", "FunctionVersion": "1"})
    assert err(exc) == ("ResourceNotFoundException", f"Alias not found: {ARN}:a:non-existent", 404)
    with pytest.raises(AwsError) as exc:
        env.provider.get_function(ctx(), {"FunctionName": "a", "Qualifier": "aliasdoesnotexist"})
    assert err(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}:a:aliasdoesnotexist", 404)


@pytest.mark.parametrize(
    ("version", "weights", "expected"),
    [
        ("1", {"2": 0.5, "3": 0.1}, ("InvalidParameterValueException",
                                     "Number of items in AdditionalVersionWeights cannot be greater than 1", 400)),
        ("1", {"1": 0.5}, ("InvalidParameterValueException",
                           "Invalid function version 1. Function version 1 is already included in routing "
                           "configuration.", 400)),
        ("10", {}, ("ResourceNotFoundException", f"Function not found: {ARN}:r:10", 404)),
        ("1", {"10": 0.5}, ("ResourceNotFoundException", f"Function not found: {ARN}:r:10", 404)),
        ("$LATEST", {"2": 0.5}, ("InvalidParameterValueException",
                                 "$LATEST is not supported for an alias pointing to more than 1 version", 400)),
    ],
)
async def test_routing_rules(env: Env, version: str, weights: dict[str, float], expected: tuple[str, str, int]) -> None:
    await two_versions(env, "r")
    with pytest.raises(AwsError) as exc:
        env.versions.create_alias(ctx(), {"FunctionName": "r", "Name": "x", "FunctionVersion": version,
                                          "RoutingConfig": {"AdditionalVersionWeights": weights}})
    assert err(exc) == expected
    if version == "$LATEST":
        # recorded: this one has no Type in its body
        assert b'"Type"' not in rest_json.render_error(exc.value, "r-1").body


async def test_alias_conflicts_and_missing_function(env: Env) -> None:
    await two_versions(env, "c")
    env.versions.create_alias(ctx(), {"FunctionName": "c", "Name": "custom", "FunctionVersion": "$LATEST"})
    with pytest.raises(AwsError) as exc:
        env.versions.create_alias(ctx(), {"FunctionName": "c", "Name": "custom", "FunctionVersion": "1"})
    assert err(exc) == ("ResourceConflictException", f"Alias already exists: {ARN}:c:custom", 409)
    with pytest.raises(AwsError) as exc:
        env.versions.create_alias(ctx(), {"FunctionName": "c-unknown", "Name": "x", "FunctionVersion": "1"})
    assert err(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}:c-unknown:1", 404)


async def test_alias_resolution_follows_weights_and_updates(draws_env: tuple[Env, Draws]) -> None:
    env, draws = draws_env
    await two_versions(env, "w")
    env.versions.create_alias(ctx(), {"FunctionName": "w", "Name": "live", "FunctionVersion": "1",
                                      "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}})
    resolve: Callable[[], Any] = lambda: env.functions.resolve(ACCOUNT, REGION, f"{ARN}:w:live", None)  # noqa: E731
    draws.values = [0.1, 0.3, 0.2499, 0.25]
    assert [resolve().version for _ in range(4)] == ["2", "1", "2", "1"]
    assert resolve().environment == {"V": "1"}
    env.versions.update_alias(ctx(), {"FunctionName": "w", "Name": "live", "FunctionVersion": "2",
                                      "RoutingConfig": {"AdditionalVersionWeights": {}}})
    assert resolve().version == "2"  # the cache follows the update at once
    env.versions.update_alias(ctx(), {"FunctionName": "w", "Name": "live", "FunctionVersion": "1"})
    assert env.functions.resolve(ACCOUNT, REGION, "w", "live").version == "1"  # rollback
    with pytest.raises(FunctionsError) as exc:
        env.functions.resolve(ACCOUNT, REGION, "w", "non-existent-alias")
    assert err(exc) == ("ResourceNotFoundException", f"Function not found: {ARN}:w:non-existent-alias", 404)


async def test_recreated_function_forgets_versions_and_aliases(env: Env) -> None:
    await two_versions(env, "re")
    env.versions.create_alias(ctx(), {"FunctionName": "re", "Name": "live", "FunctionVersion": "2"})
    env.functions.resolve(ACCOUNT, REGION, "re", "live")
    env.provider.delete_function(ctx(), {"FunctionName": "re"})
    await env.create("re")
    await env.settle()
    with pytest.raises(FunctionsError):
        env.functions.resolve(ACCOUNT, REGION, "re", "live")
    with pytest.raises(FunctionsError):
        env.functions.resolve(ACCOUNT, REGION, "re", "2")
    assert env.versions.publish_version(ctx(), {"FunctionName": "re"})["Version"] == "1"


async def test_list_functions_all_versions(env: Env) -> None:
    await two_versions(env, "lf")
    out = env.provider.list_functions(ctx(), {"FunctionVersion": "ALL"})["Functions"]
    assert [(f["FunctionName"], f["Version"]) for f in out] == [("lf", "$LATEST"), ("lf", "1"), ("lf", "2")]
    assert out[1]["FunctionArn"] == f"{ARN}:lf:1"
    plain = env.provider.list_functions(ctx(), {})["Functions"]
    assert [f["Version"] for f in plain] == ["$LATEST"] and plain[0]["FunctionArn"] == f"{ARN}:lf"


async def test_a_description_change_is_worth_a_new_version(env: Env) -> None:
    """As AWS (LocalStack's AWS-validated test_version_lifecycle): updating only $LATEST's description
    makes the next PublishVersion publish; publishing again without a change answers that version."""
    await env.create("dsc", Description="one")
    await env.settle()
    v1 = env.versions.publish_version(ctx(), {"FunctionName": "dsc", "Description": "published text"})
    assert env.versions.publish_version(ctx(), {"FunctionName": "dsc"})["Version"] == v1["Version"] == "1"
    env.provider.update_function_configuration(ctx(), {"FunctionName": "dsc", "Description": "two"})
    await env.settle()
    v2 = env.versions.publish_version(ctx(), {"FunctionName": "dsc"})
    assert (v2["Version"], v2["Description"]) == ("2", "two")
    assert env.versions.publish_version(ctx(), {"FunctionName": "dsc", "Description": "x"})["Version"] == "2"
