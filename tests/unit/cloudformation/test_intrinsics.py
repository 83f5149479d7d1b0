"""CloudFormation's intrinsic functions, evaluated as the CloudFormation user guide documents them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hearth.services.cloudformation import intrinsics, template
from hearth.services.cloudformation.intrinsics import NO_VALUE, Scope
from hearth.services.cloudformation.prepare import prepare
from hearth.services.cloudformation.template import TemplateError

PSEUDO = {"AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1", "AWS::StackName": "app",
          "AWS::StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/1", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com", "AWS::NotificationARNs": []}


def scope(**parameters: Any) -> Scope:
    return Scope(parameters=parameters, pseudo=PSEUDO,
                 mappings={"Region": {"eu-west-1": {"Ami": "ami-1", "Zones": ["a", "b"]}}},
                 condition_definitions={"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                                        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]}},
                 ref=lambda name: {"Bucket": "my-bucket"}[name],
                 get_att=lambda name, attr: {("Bucket", "Arn"): "arn:aws:s3:::my-bucket"}[(name, attr)],
                 export=lambda name: {"shared-vpc": "vpc-1"}.get(name))


@pytest.mark.parametrize(("expression", "expected"), [
    ({"Ref": "AWS::Region"}, "eu-west-1"),
    ({"Ref": "Bucket"}, "my-bucket"),
    ({"Fn::GetAtt": ["Bucket", "Arn"]}, "arn:aws:s3:::my-bucket"),
    ({"Fn::GetAtt": "Bucket.Arn"}, "arn:aws:s3:::my-bucket"),
    ({"Fn::Sub": "${AWS::StackName}-${Bucket}-${Bucket.Arn}-${!Literal}"},
     "app-my-bucket-arn:aws:s3:::my-bucket-${Literal}"),
    ({"Fn::Sub": ["${Name}.${AWS::URLSuffix}", {"Name": {"Ref": "Env"}}]}, "prod.amazonaws.com"),
    ({"Fn::Join": [":", ["a", {"Ref": "Env"}, 3]]}, "a:prod:3"),
    ({"Fn::Select": ["1", ["x", "y", "z"]]}, "y"),
    ({"Fn::Split": [",", "a,b,,c"]}, ["a", "b", "", "c"]),
    ({"Fn::FindInMap": ["Region", {"Ref": "AWS::Region"}, "Ami"]}, "ami-1"),
    ({"Fn::FindInMap": ["Region", "nowhere", "Ami", {"DefaultValue": "ami-0"}]}, "ami-0"),
    ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ({"Fn::Base64": "hi"}, "aGk="),
    ({"Fn::Cidr": ["192.168.0.0/24", 6, 5]},
     ["192.168.0.0/27", "192.168.0.32/27", "192.168.0.64/27", "192.168.0.96/27", "192.168.0.128/27",
      "192.168.0.160/27"]),
    ({"Fn::If": ["IsProd", "big", "small"]}, "big"),
    ({"Fn::If": ["NotProd", "big", {"Ref": "AWS::NoValue"}]}, NO_VALUE),
    ({"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": ["1", 1]}]}, True),
    ({"Fn::Or": [{"Condition": "NotProd"}, {"Fn::Equals": ["a", "b"]}]}, False),
    ({"Fn::ImportValue": "shared-vpc"}, "vpc-1"),
    ({"Fn::Length": [1, 2, 3]}, 3),
    ({"Fn::ToJsonString": {"a": [1, {"Ref": "Env"}]}}, '{"a":[1,"prod"]}'),
    ({"List": ["a", {"Ref": "AWS::NoValue"}], "Gone": {"Ref": "AWS::NoValue"}}, {"List": ["a"]}),
])
def test_documented_results(expression: Any, expected: Any) -> None:
    assert intrinsics.evaluate(expression, scope(Env="prod")) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ({"Fn::Select": [5, ["a"]]}, "Template error: Fn::Select cannot select nonexistent value at index 5"),
    ({"Fn::Select": ["x"]}, "Template error: Fn::Select requires a list argument with two elements: an integer index "
                            "and a list"),
    ({"Fn::FindInMap": ["Region", "C", "Suffix"]}, "Template error: Unable to get mapping for Region::C::Suffix"),
    ({"Fn::If": ["Missing", 1, 2]}, "Template error: unresolved condition dependency Missing in Fn::If"),
    ({"Fn::Equals": ["a"]}, "Template error: every Fn::Equals object requires a list of 2 string parameters."),
    ({"Fn::GetAtt": ["Bucket"]}, "Template error: every Fn::GetAtt object requires two non-empty parameters, the "
                                 "resource name and the resource attribute"),
    ({"Fn::ImportValue": "nope"}, "No export named nope found."),
])
def test_errors_have_cloudformation_texts(expression: Any, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        intrinsics.evaluate(expression, scope(Env="dev"))
    assert err.value.message == message


def test_references_find_refs_getatts_and_sub_variables_only_among_resources() -> None:
    value = {"A": {"Ref": "Queue"}, "B": {"Fn::GetAtt": "Topic.Arn"},
             "C": {"Fn::Sub": ["${Role.Arn}-${Local}-${!Queue2}-${Param}", {"Local": {"Ref": "Bucket"}}]},
             "D": {"Ref": "Param"}}
    assert intrinsics.references(value, {"Queue", "Topic", "Role", "Bucket", "Queue2"}) == {
        "Queue", "Topic", "Role", "Bucket"}


def test_yaml_short_forms_read_as_their_long_forms() -> None:
    body = """
AWSTemplateFormatVersion: 2010-09-09
Resources:
  Q:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub '${AWS::StackName}-q'
      Tags:
        - Key: arn
          Value: !GetAtt Other.Arn
        - Key: joined
          Value: !Join [",", [!Ref A, !Select [0, !GetAZs '']]]
"""
    parsed = template.parse(body)
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    props = parsed["Resources"]["Q"]["Properties"]
    assert props["QueueName"] == {"Fn::Sub": "${AWS::StackName}-q"}
    assert props["Tags"][0]["Value"] == {"Fn::GetAtt": ["Other", "Arn"]}
    assert props["Tags"][1]["Value"] == {"Fn::Join": [",", [{"Ref": "A"}, {"Fn::Select": [0, {"Fn::GetAZs": ""}]}]]}


def test_a_parameter_valued_aws_novalue_drops_the_property() -> None:
    # AWS reads a parameter whose value is `AWS::NoValue` as no value (an optional property's default).
    assert intrinsics.evaluate({"LogGroupName": {"Ref": "Name"}, "Days": 7}, scope(Name="AWS::NoValue")) == {"Days": 7}


def test_a_template_indented_as_a_whole_reads() -> None:
    body = "\n    Resources:\n      A:\n        Type: AWS::SNS::Topic\n"
    assert template.parse(body) == {"Resources": {"A": {"Type": "AWS::SNS::Topic"}}}


def test_language_extensions_show_their_results_in_the_processed_template() -> None:
    body = json.dumps({"Transform": "AWS::LanguageExtensions", "Parameters": {"L": {"Type": "CommaDelimitedList"}},
                       "Resources": {"Q": {"Type": "AWS::SQS::Queue"},
                                     "P": {"Type": "AWS::SSM::Parameter", "Properties": {
                           "Type": "String", "Value": {"Fn::Length": {"Ref": "L"}},
                           "Description": {"Fn::ToJsonString": {"a": "foo"}},
                           "AllowedPattern": {"Fn::ToJsonString": [{"Ref": "Q"}]}}}}})
    prepared = prepare(body, {"L": "a,b,c"}, {}, account="111111111111", region="us-east-1", stack_name="s",
                       stack_id="id", lookup=lambda *a: None)
    props = prepared.template["Resources"]["P"]["Properties"]
    # What needs a resource (the queue's URL) is left for deploy time.
    assert props == {"Type": "String", "Value": 3, "Description": '{"a":"foo"}',
                     "AllowedPattern": {"Fn::ToJsonString": [{"Ref": "Q"}]}}


def test_for_each_expands_nested_loops_and_folds_literal_functions() -> None:
    body = """
Transform: AWS::LanguageExtensions
Parameters:
  Names:
    Type: CommaDelimitedList
Resources:
  Fn::ForEach::Outer:
    - Prefix
    - !Ref Names
    - My${Prefix}:
        Type: AWS::SNS::Topic
        Properties:
          TopicName: !Join ['.', [!Ref Prefix, fifo]]
      Fn::ForEach::Inner:
        - Suffix
        - [A, B]
        - My${Prefix}${Suffix}:
            Type: AWS::SSM::Parameter
            Properties:
              Type: String
              Value: !Sub "${Prefix} ${Suffix} ${AWS::Region}"
"""
    prepared = prepare(body, {"Names": "x,y"}, {}, account="111111111111", region="us-east-1", stack_name="s",
                       stack_id="id", lookup=lambda *a: None)
    resources = prepared.template["Resources"]
    assert sorted(resources) == ["Myx", "MyxA", "MyxB", "Myy", "MyyA", "MyyB"]
    assert resources["Myy"]["Properties"]["TopicName"] == "y.fifo"
    # A pseudo parameter is left for deploy time.
    assert resources["MyxB"]["Properties"]["Value"] == {"Fn::Sub": "x B ${AWS::Region}"}
