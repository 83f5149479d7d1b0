"""A pytest plugin loaded into LocalStack's test run: it skips, with the reason, what Hearth cannot be judged on.

It runs in the conformance environment's interpreter (Python ≥ 3.12, LocalStack's framework), not in
Hearth's: it must import nothing but the standard library and pytest. The runner copies this file next
to the tests and loads it with `-p`.

A test is not judgeable here when it was never validated against AWS (no `aws.validated` marker), when
LocalStack marks it as LocalStack-only, in-process, needing Docker or a container, or as not matching
AWS itself (`aws.needs_fixing`), when it builds a Java or .NET function (no Maven or .NET toolchain
on these machines), or when one of its parameters (or the runtime its body fixes, `FIXED_RUNTIMES`) is
a runtime this host does not have (the runner lists the installed ones in $HEARTH_CONFORMANCE_RUNTIMES).
Such tests are skipped before they run, with a reason that starts with `NOT_JUDGEABLE`, so that
`results` can tell them from LocalStack's own skips; their time is saved.
It never skips a test for any other reason: a missing operation or a wrong answer must show as such.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import types
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

NOT_JUDGEABLE = "not judgeable here: "

# LocalStack's markers (localstack.testing.pytest.marking) and what each means for a run against Hearth.
MARKER_REASONS = {
    "aws_only_localstack": "LocalStack-only (aws.only_localstack)",
    "only_localstack": "LocalStack-only (only_localstack)",
    "requires_in_process": "needs LocalStack in-process (requires_in_process)",
    "requires_in_container": "needs to run inside a container (requires_in_container)",
    "requires_docker": "needs Docker (requires_docker)",
    "test_requires_docker": "needs Docker (test_requires_docker)",
    "aws_needs_fixing": "does not pass against AWS itself (aws.needs_fixing)",
    "aws_manual_setup_required": "needs manual set-up in an AWS account (aws.manual_setup_required)",
    "aws_unknown": "never validated against AWS (aws.unknown)",
}

# AWS-validated tests that assert a LocalStack extension when they do not run against AWS itself
# (`if not is_aws_cloud(): assert …`): what they judge is LocalStack's, not AWS's.
LOCALSTACK_ASSERTIONS = {
    "test_lambda_url_invocation_custom_id_aliased": "asserts LocalStack's `_custom_id_` URL tag off AWS (an extension)",
    # Its `secondary_aws_client` is a second account here (LocalStack's 000000000002 credentials); AWS
    # itself denies GetFunction across accounts without a resource policy, so its AWS run can only have
    # passed with a secondary profile of the same account.
    "test_cross_region_arn_function_access": "needs its secondary client in the primary account (a second "
                                             "account here, which AWS denies without a policy)",
    # Off AWS it asserts LocalStack's own JSON shape (`ReceiveMessageResult.Message.Body`, which its comment
    # calls an error); AWS answers `ReceiveMessageResult.messages[0].Body`, as Hearth does.
    "test_marker_serialization_json_protocol": "asserts LocalStack's JSON query shape off AWS, not AWS's",
}

# AWS-validated tests whose integration target is a service Hearth does not serve (issue 13: not judgeable).
NEEDS_SERVICE = {
    "test_apigateway_with_step_function_integration": "integrates with Step Functions, which Hearth does not serve",
    "test_create_execute_api_vpc_endpoint": "needs EC2 VPC endpoints, which Hearth does not serve",
}

# AWS-validated tests whose parametrisation has no AWS recording in the snapshot file: nothing to judge by.
NO_RECORDING = {
    "test_import_rest_api_with_base_path_oas30[prepend]": "no AWS recording of this parameter in the snapshot",
    "test_import_rest_api_with_base_path_oas30[split]": "no AWS recording of this parameter in the snapshot",
}

# AWS-validated tests that create a function of one fixed runtime in their body (not a parameter).
FIXED_RUNTIMES = {
    "test_function_url_with_response_streaming": "nodejs18.x",
    "test_updating_stack_with_iam_role": "nodejs18.x",  # IAM: its CloudFormation template's function
    # CloudFormation's resources/test_lambda.py: its template (lambda_function_update.yml) fixes the runtime.
    "test_update_lambda_function": "nodejs18.x",
    "test_update_lambda_function_name": "nodejs18.x",
}

# Tests that deploy their resources with the AWS CDK (aws-cdk-lib and Node's jsii runtime, hundreds of MB),
# which the conformance environment does not install; their modules import `aws_cdk` at the top.
NEEDS_CDK = {
    "test_put_events_with_target_statefunction_machine": "deploys with the AWS CDK (not installed here)",
    "test_table_v2_stream": "deploys with the AWS CDK (not installed here)",
    # CloudFormation's resource tests (resources/test_sns.py, test_dynamodb.py, test_secretsmanager.py).
    "test_sns_topic_with_attributes": "deploys with the AWS CDK (not installed here)",
    "test_sns_topic_policy_resets_to_default": "deploys with the AWS CDK (not installed here)",
    "test_ttl_cdk": "deploys with the AWS CDK (not installed here)",
    "test_cdk_deployment_generates_secret_value_if_no_value_is_provided":
        "deploys with the AWS CDK (not installed here)",
    "test_scenario_validate_infra": "deploys with the AWS CDK (not installed here)",
}

# Tests that build a Java function with Maven in their body (`make build`; no Java toolchain here).
BUILDS_JAVA = {
    "test_subscribe_to_shard_with_java_sdk_v2_lambda": "builds a java17 function with Maven (no Java toolchain here)",
}
# CloudFormation's resource tests, one file per service: the files whose every test deploys resources of a
# service Hearth does not serve (its stacks would fail with "Resource type … is not supported by Hearth").
# What they judge is that service, not CloudFormation.
UNSERVED_RESOURCE_FILES = {
    "test_acm.py": "ACM", "test_cloudwatch.py": "CloudWatch (metrics and alarms)",
    "test_elasticsearch.py": "Elasticsearch", "test_firehose.py": "Kinesis Data Firehose", "test_kms.py": "KMS",
    "test_opensearch.py": "OpenSearch", "test_redshift.py": "Redshift", "test_resource_groups.py": "Resource Groups",
    "test_secretsmanager.py": "Secrets Manager", "test_stepfunctions.py": "Step Functions",
}
RESOURCE_TESTS_DIR = "services/cloudformation/resources/"

# Parametrised runtimes whose test functions are built with a toolchain these machines lack.
_TOOLCHAIN_RUNTIME = re.compile(r"[\[-](java\d+(\.al2)?|dotnet\d*|dotnetcore[\d.]*)(?=[\]-])")
# What a Lambda runtime identifier looks like among a test's parameters (LocalStack's Runtime enum values).
_RUNTIME_ID = re.compile(r"^(python\d|nodejs\d|ruby\d|java\d|dotnet|go1|provided)[\w.]*$")


def not_judgeable_reason(name: str, marker_names: set[str], params: list[str] | None = None,
                         installed: frozenset[str] | None = None) -> str | None:
    """Why a test cannot be judged here, or None: from its node name, the names of its markers, its
    parameters' values and the runtimes installed on this host (None: unknown, not checked)."""
    for marker, reason in MARKER_REASONS.items():
        if marker in marker_names:
            return reason
    if "aws_validated" not in marker_names:
        return "never validated against AWS (no aws.validated marker)"
    if name.split("[", 1)[0] in LOCALSTACK_ASSERTIONS:
        return LOCALSTACK_ASSERTIONS[name.split("[", 1)[0]]
    if name in NO_RECORDING:
        return NO_RECORDING[name]
    if name.split("[", 1)[0] in NEEDS_SERVICE:
        return NEEDS_SERVICE[name.split("[", 1)[0]]
    if name.split("[", 1)[0] in NEEDS_CDK:
        return NEEDS_CDK[name.split("[", 1)[0]]
    if name.split("[", 1)[0] in BUILDS_JAVA:
        return BUILDS_JAVA[name.split("[", 1)[0]]
    match = _TOOLCHAIN_RUNTIME.search(name)
    if match:
        return f"builds a {match.group(1)} function (no Java or .NET toolchain here)"
    if name.startswith(("test_java_", "test_dotnet_")):  # TestJavaRuntimes' tests without a runtime in the id
        return "builds a Java or .NET function (no Java or .NET toolchain here)"
    if installed is not None:
        fixed = FIXED_RUNTIMES.get(name.split("[", 1)[0])
        if fixed is not None and fixed not in installed:
            return f"runtime {fixed} is not installed on this host"
        for value in params or []:
            if _RUNTIME_ID.match(value) and value not in installed:
                return f"runtime {value} is not installed on this host"
    return None


def _param_values(item: pytest.Item) -> list[str]:
    """The test's scalar parameters as text (LocalStack's Runtime is a str enum: its value is the
    runtime id) and the parts of its id (`[nodejs16.x]`, `[a-b]`). Lists are left alone: a list of
    runtimes is data (a layer's compatible runtimes), not a function to run."""
    out: list[str] = []
    callspec = getattr(item, "callspec", None)
    for value in callspec.params.values() if callspec is not None else ():
        if not isinstance(value, (tuple, list, dict)):
            out.append(str(getattr(value, "value", value)))
    if "[" in item.name:
        out += item.name.split("[", 1)[1].rstrip("]").split("-")
    return out


# LocalStack internals that a copied test module imports but the pinned localstack-core release does not
# ship (its IAM provider no longer patches moto): module -> attributes. Without them the whole module fails
# to collect and none of its tests is judged. ADDITIONAL_MANAGED_POLICIES is LocalStack's list of AWS
# managed policies it adds to moto's; provided empty, `test_attach_detach_role_policy` attaches only the
# policy it creates itself (the rest of that test, and every other test, is unchanged).
MISSING_INTERNALS: dict[str, dict[str, object]] = {
    "localstack.services.iam.iam_patches": {"ADDITIONAL_MANAGED_POLICIES": {}},
}


def provide_missing_internals() -> list[str]:
    """Register the modules of MISSING_INTERNALS that cannot be imported; returns their names."""
    provided = []
    for name, attributes in MISSING_INTERNALS.items():
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # its parent package is missing too: nothing here would use it
            continue
        if not found:
            module = types.ModuleType(name, "provided by Hearth's conformance plugin (see MISSING_INTERNALS)")
            module.__dict__.update(attributes)
            sys.modules[name] = module
            provided.append(name)
    return provided


def pytest_configure(config: pytest.Config) -> None:
    provide_missing_internals()


def _stub_uninstallable_imports() -> None:
    """Empty stand-ins for packages test modules import at the top but only a few of their tests use,
    so that the module's other tests are collected:
    - `amazon_kclpy` (LocalStack's KCL connector, imported by `test_kinesis.py`) cannot be installed here:
      its build fetches Java archives. Only the LocalStack-only `test_run_kcl` uses it.
    - `aws_cdk` (imported by EventBridge's, Lambda's, API Gateway's and CloudFormation's test modules and by
      LocalStack's provisioning helper): only the tests in NEEDS_CDK use it; every `aws_cdk` module and name
      is a stand-in (`_CdkStandIns`)."""
    try:
        import amazon_kclpy  # noqa: F401
    except ImportError:
        root, kcl, v2, processor = (types.ModuleType(n) for n in (
            "amazon_kclpy", "amazon_kclpy.kcl", "amazon_kclpy.v2", "amazon_kclpy.v2.processor"))
        processor.RecordProcessorBase = type("RecordProcessorBase", (), {})  # type: ignore[attr-defined]
        root.kcl, root.v2, v2.processor = kcl, v2, processor  # type: ignore[attr-defined]
        sys.modules.update({m.__name__: m for m in (root, kcl, v2, processor)})
    try:
        import aws_cdk  # noqa: F401
    except ImportError:
        # Test modules import construct modules (`import aws_cdk.aws_events as events`), names from them
        # (`BillingMode`) and LocalStack's provisioning helper annotates with `cdk.App`: any `aws_cdk`
        # module and any name in one is a stand-in, so the modules' other tests are collected.
        sys.meta_path.insert(0, _CdkStandIns())
    # `test_events_targets.py` imports two Firehose helpers from folders the shared copy leaves out
    # (LocalStack's scenario tests, its Firehose tests); only its Firehose target test calls them, and
    # that test needs Firehose itself, which decides its verdict.
    if not Path("tests/aws/scenario").exists():
        helpers: dict[str, dict[str, object]] = {"tests.aws.scenario": {}, "tests.aws.scenario.kinesis_firehose": {},
                   "tests.aws.scenario.kinesis_firehose.conftest": {
                       "get_all_expected_messages_from_s3": _not_in_shared_copy},
                   "tests.aws.services.firehose": {},
                   "tests.aws.services.firehose.helper_functions": {
                       "get_firehose_iam_documents": _firehose_documents}}
        for name, members in helpers.items():
            module = types.ModuleType(name)
            module.__dict__.update(members)
            sys.modules.setdefault(name, module)


class _CdkStandIn(types.ModuleType):
    """An `aws_cdk` module of the stand-in package: every public name is an empty class."""

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        # Lower-case names are construct modules (`aws_events`), capitalised ones classes (`App`).
        value: object = (importlib.import_module(f"{self.__name__}.{name}") if name[:1].islower()
                         else type(name, (), {}))
        setattr(self, name, value)
        return value


class _CdkStandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `aws_cdk` and every `aws_cdk.*` module (the AWS CDK is not installed here) as stand-ins."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname == "aws_cdk" or fullname.startswith("aws_cdk."):
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        module = _CdkStandIn(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _not_in_shared_copy(*args: object, **kwargs: object) -> object:
    raise NotImplementedError("LocalStack's Firehose scenario helpers are not in the shared copy of the tests")


def _firehose_documents(bucket_arn: str, stream_arn: str) -> tuple[dict[str, object], dict[str, object]]:
    """A role Firehose may assume, and what it may do: write to the bucket, read the stream."""
    trust: dict[str, object] = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "firehose.amazonaws.com"}}]}
    allowed: dict[str, object] = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*"], "Resource": [bucket_arn, f"{bucket_arn}/*"]},
        {"Effect": "Allow", "Action": ["kinesis:*"], "Resource": [stream_arn]}]}
    return trust, allowed


_stub_uninstallable_imports()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Point LocalStack's `internal_service_url()` at the Hearth under test: LocalStack's conftest sets its
    listen address to port 4566 in `pytest_configure`, before the session starts."""
    listen = os.environ.get("HEARTH_CONFORMANCE_GATEWAY")
    if not listen:
        return
    from localstack import config  # only in the conformance environment, never in Hearth's

    host, _, port = listen.rpartition(":")
    config.GATEWAY_LISTEN = config.UniqueHostAndPortList([config.HostAndPort(host=host, port=int(port))])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    listed = os.environ.get("HEARTH_CONFORMANCE_RUNTIMES")
    installed = frozenset(listed.split(",")) if listed else None
    for item in items:
        reason = not_judgeable_reason(item.name, {mark.name for mark in item.iter_markers()},
                                      _param_values(item), installed)
        path = item.nodeid.split("::", 1)[0]
        unserved = UNSERVED_RESOURCE_FILES.get(path.rsplit("/", 1)[-1]) if RESOURCE_TESTS_DIR in path else None
        if reason is None and unserved is not None:
            reason = f"deploys resources of {unserved}, which Hearth does not serve"
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=NOT_JUDGEABLE + reason))
