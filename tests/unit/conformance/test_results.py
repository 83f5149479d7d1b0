"""The conformance run's verdicts: JUnit XML in, passed / differs / blocked / not judgeable out."""

from __future__ import annotations

from pathlib import Path

from hearth.conformance.plugin import NOT_JUDGEABLE, not_judgeable_reason
from hearth.conformance.report import summarize, summary_json, table
from hearth.conformance.results import classify, file_of, read_junit

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_ok" time="0.1"/>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_diff" time="0.1">
  <failure message="&gt;&gt; match key: create #x1B[33m(~)#x1B[0m /Error/Code">details</failure></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_csc" time="0.1">
  <failure message="ClientError: An error occurred (UnknownOperationException) when calling the
 CreateCodeSigningConfig operation: The operation CreateCodeSigningConfig is not supported by Hearth."/></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_s3" time="0.1">
  <error message="failed on setup with &quot;botocore.exceptions.ClientError: An error occurred (400) when calling
 the CreateBucket operation: Bad Request&quot;"/></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_image" time="0.1">
  <failure message="localstack.utils.container_utils.container_client.DockerNotAvailable: Docker not available"/>
 </testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_ls" time="0">
  <skipped type="pytest.skip" message="{nj}LocalStack-only (aws.only_localstack)"/></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_own_skip" time="0">
  <skipped type="pytest.skip" message="Not implemented"/></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_teardown" time="0.1"/>
 <testcase classname="tests.aws.services.lambda_.test_lambda_api.TestA" name="test_teardown" time="0.1">
  <error message="failed on teardown with &quot;AssertionError&quot;"/></testcase>
 <testcase classname="tests.aws.services.lambda_.test_lambda" name="test_module_level" time="0.1"/>
</testsuite></testsuites>
""".replace("{nj}", NOT_JUDGEABLE)


def test_verdicts_from_junit(tmp_path: Path) -> None:
    path = tmp_path / "lambda.xml"
    path.write_text(JUNIT)
    results = {r.test: r for r in read_junit(path)}
    assert {name: r.verdict for name, r in results.items()} == {
        "TestA::test_ok": "passed",
        "TestA::test_diff": "differs",
        "TestA::test_csc": "blocked",
        "TestA::test_s3": "blocked",
        "TestA::test_image": "not_judgeable",
        "TestA::test_ls": "not_judgeable",
        "TestA::test_own_skip": "not_judgeable",
        "TestA::test_teardown": "differs",  # one test, judged on its teardown error too
        "test_module_level": "passed",
    }
    assert results["TestA::test_csc"].reason == "CreateCodeSigningConfig"
    assert results["TestA::test_s3"].reason == "CreateBucket"
    assert results["TestA::test_diff"].reason == ">> match key: create (~) /Error/Code"
    assert results["TestA::test_ls"].reason == "LocalStack-only (aws.only_localstack)"
    assert results["TestA::test_own_skip"].reason == "skipped by LocalStack: Not implemented"
    assert results["TestA::test_ok"].file == "tests/aws/services/lambda_/test_lambda_api.py"
    assert results["test_module_level"].file == "tests/aws/services/lambda_/test_lambda.py"

    summaries = summarize({"lambda": list(results.values())})
    api = next(s for s in summaries if s.file.endswith("test_lambda_api.py"))
    assert (api.passed, api.differs, api.blocked, api.not_judgeable, api.judgeable) == (1, 2, 2, 3, 5)
    assert api.rate == 0.2
    text = table(summaries)
    assert "test_lambda_api.py" in text and "20.0 %" in text and "CreateCodeSigningConfig" in text
    doc = summary_json(summaries, {"lambda": list(results.values())}, {"date": "d"})
    assert doc["services"]["lambda"]["judgeable"] == 6 and len(doc["tests"]) == 9


def test_classify_missing_service_and_connection() -> None:
    raw = (r"""invalid XML received: b'{"message":"The service \'ec2\' is not served by this """
           r"""Hearth endpoint."}'""")
    assert classify(None, [raw]) == ("blocked", "ec2")
    assert classify(None, ["b'{\"message\":\"The service 'ec2' is not served by this Hearth endpoint.\"}'"]) == (
        "blocked", "ec2")
    assert classify(None, ["An error occurred (InvalidAction) when calling the GetCallerIdentity operation"]) == (
        "blocked", "GetCallerIdentity")
    assert classify(None, ["Failed to build multiruntime scenario='echo' for runtime=<Runtime.java11: 'java11'>"])[0] \
        == "not_judgeable"
    assert file_of("tests.aws.services.sqs.test_sqs.TestSqsProvider") == "tests/aws/services/sqs/test_sqs.py"


def test_what_the_plugin_cannot_judge() -> None:
    validated = {"aws_validated"}
    assert not_judgeable_reason("test_x", validated) is None
    assert not_judgeable_reason("test_x", set()) is not None  # never validated against AWS
    assert "LocalStack-only" in (not_judgeable_reason("test_x", {"aws_validated", "aws_only_localstack"}) or "")
    assert "java17" in (not_judgeable_reason("test_snapstart[java17]", validated) or "")
    assert "Java" in (not_judgeable_reason("test_java_runtime_with_lib", validated) or "")
    installed = frozenset({"python3.12", "nodejs20.x"})
    assert not_judgeable_reason("test_y[a]", validated, ["nodejs16.x"], installed) == \
        "runtime nodejs16.x is not installed on this host"
    assert not_judgeable_reason("test_y[b]", validated, ["python3.12", "other"], installed) is None
    assert not_judgeable_reason("test_y[c]", validated, ["nodejs16.x"], None) is None  # unknown: not checked
    # A runtime fixed in the test's body counts too.
    assert not_judgeable_reason("test_function_url_with_response_streaming", validated, [], installed) == \
        "runtime nodejs18.x is not installed on this host"
