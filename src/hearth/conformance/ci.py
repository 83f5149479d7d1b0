"""The part of the conformance suite CI runs on every change: tests that pass today, fast ones, spread
over the operations users touch most. Any of them not passing fails CI, so a regression in AWS
conformance cannot land unseen; the whole suite (`./run conformance`) is too long for every change.

Add a test here once it passes and takes about a second; never remove one to make CI green.
"""

from __future__ import annotations

from hearth.conformance.results import CaseResult

_LAMBDA_API = "tests/aws/services/lambda_/test_lambda_api.py"
_SQS = "tests/aws/services/sqs/test_sqs.py"
_LOGS = "tests/aws/services/logs"
_KINESIS = "tests/aws/services/kinesis/test_kinesis.py"
_SNS = "tests/aws/services/sns/test_sns.py"
_EVENTS = "tests/aws/services/events"
_DYNAMODB = "tests/aws/services/dynamodb/test_dynamodb.py"
_IAM = "tests/aws/services/iam/test_iam.py"
_CFN = "tests/aws/services/cloudformation/api"
_SSM = "tests/aws/services/ssm/test_ssm.py"
_APIGW = "tests/aws/services/apigateway"
_S3 = "tests/aws/services/s3"

TESTS: dict[str, tuple[str, ...]] = {
    "lambda": tuple(f"{_LAMBDA_API}::{test}" for test in (
        "TestLoggingConfig::test_function_advanced_logging_configuration",
        "TestLambdaFunction::test_function_lifecycle",
        "TestLambdaFunction::test_create_lambda_exceptions",
        "TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[delete_function]",
        "TestLambdaFunction::test_delete_on_nonexisting_version",
        "TestLambdaFunction::test_redundant_updates",
        "TestLambdaFunction::test_ops_on_nonexisting_fn[get_function]",
        "TestLambdaFunction::test_ops_on_nonexisting_fn[delete_function]",
        "TestLambdaFunction::test_ops_on_nonexisting_version[get_function]",
        "TestLambdaFunction::test_get_function_wrong_region[invoke]",
        "TestLambdaFunction::test_function_arns",
        "TestLambdaFunction::test_function_name_and_qualifier_validation[invalid_characters_in_function_name-create_function]",
        "TestLambdaFunction::test_function_name_and_qualifier_validation[qualifier_too_long-invoke]",
        "TestLambdaFunction::test_function_name_and_qualifier_validation[non_lambda_arn-get_function]",
        "TestLambdaFunction::test_function_name_and_qualifier_validation[misspelled_latest_in_arn-delete_function]",
        "TestLambdaFunction::test_list_functions",
        "TestLambdaFunction::test_invalid_invoke",
        "TestLambdaAlias::test_alias_lifecycle",
        "TestLambdaAlias::test_alias_naming",
        "TestLambdaAlias::test_non_existent_alias_update",
        "TestLambdaRevisions::test_function_revisions_basic",
        "TestLambdaVersions::test_version_lifecycle",
        "TestLambdaReservedConcurrency::test_function_concurrency_limits",
        "TestLambdaPermissions::test_lambda_permission_fn_versioning",
        "TestLambdaTag::test_tag_lifecycle[lambda_function]",
        "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_lifecycle",
        "TestLambdaReservedConcurrency::test_function_concurrency",
        "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions",
        "TestLambdaPermissions::test_permission_exceptions",
        "TestLambdaPermissions::test_remove_multi_permissions",
        "TestLambdaUrl::test_url_config_exceptions",
        "TestLambdaUrl::test_url_config_lifecycle",
        "TestLambdaAccountSettings::test_account_settings",
        "TestLambdaEventSourceMappings::test_event_source_mapping_exceptions",
        "TestLambdaLayer::test_layer_lifecycle",
        "TestLambdaLayer::test_layer_policy_lifecycle",
        "TestLambdaSnapStart::test_snapstart_exceptions",
        # Passing since the Lambda conformance round of 2026-12-06 (each about a second or two).
        "TestLambdaTag::test_create_tag_on_esm_create",
        "TestLambdaTag::test_tag_lifecycle[event_source_mapping]",
        "TestLambdaTags::test_tag_lifecycle",
        "TestLambdaRevisions::test_function_revisions_version_and_alias",
        "TestCodeSigningConfig::test_code_signing_not_found_excs",
        "TestLambdaLayer::test_layer_s3_content",
        "TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle",
    )),
    "sqs": tuple(f"{_SQS}::{test}" for test in (
        "TestSqsProvider::test_list_queues",
        "TestSqsProvider::test_create_queue_and_get_attributes[sqs]",
        "TestSqsProvider::test_send_receive_message[sqs_query]",
        "TestSqsProvider::test_send_message_batch[sqs]",
        "TestSqsProvider::test_tag_untag_queue[sqs]",
        "TestSqsProvider::test_create_fifo_queue_with_different_attributes_raises_error[sqs]",
        "TestSqsProvider::test_receive_terminate_visibility_timeout[sqs]",
        "TestSqsProvider::test_publish_get_delete_message_batch[sqs_query]",
        "TestSqsProvider::test_dead_letter_queue_max_receive_count[sqs]",
        "TestSqsProvider::test_send_message_with_binary_attributes[sqs]",
        "TestSqsProvider::test_receive_message_attribute_names_filters[sqs]",
        "TestSqsQueryApi::test_get_queue_url_work_for_different_queue[path]",
        "TestSqsProvider::test_posting_to_queue_via_queue_name[sqs]",
        "TestSqsProvider::test_send_message_with_delay_0_works_for_fifo[sqs]",
        "TestSqsQueryApi::test_invalid_action_raises_exception",
        "TestSqsProvider::test_fifo_receive_message_with_zero_visibility_timeout[sqs]",
        "TestSqsProvider::test_sqs_permission_lifecycle[sqs_query]",
        "TestSqsProvider::test_send_message_with_empty_string_attribute[sqs]",
        "TestSqsProvider::test_send_message_batch_with_oversized_contents[sqs]",
        "TestSqsQueryApi::test_get_send_and_receive_messages",
    )) + tuple(f"tests/aws/services/sqs/test_sqs_move_task.py::{test}" for test in (
        "test_cancel_with_invalid_task_handle",
        "test_destination_needs_to_exist",
    )),
    "logs": tuple(f"{_LOGS}/{test}" for test in (
        "test_logs_metric_filters.py::TestMetricFilters::test_put_metric_filter_basic",
        "test_logs_resource_policies.py::TestResourcePolicies::test_put_resource_policy",
        "test_logs_subscription_filters.py::TestSubscriptionFilters::"
        "test_describe_subscription_filters_log_group_not_found",
        "test_logs_events.py::TestLogsEvents::test_get_log_events_limit_validation",
        "test_logs_delivery.py::TestDeliveryDestinations::test_get_delivery_destination_not_found",
        "test_logs_queries.py::TestCloudWatchLogsInsightsQueries::test_describe_queries_empty",
    )),
    "kinesis": tuple(f"{_KINESIS}::{test}" for test in (
        "TestKinesis::test_create_stream_without_shard_count",
        "TestKinesis::test_resource_policy_crud",
        "TestKinesis::test_cbor_exceptions",
        "TestKinesis::test_subscribe_to_shard",
        "TestKinesis::test_subscribe_to_shard_with_sequence_number_as_iterator",
    )),
    "sns": tuple(f"{_SNS}::{test}" for test in (
        "TestSNSTopicCrud::test_tags",
        "TestSNSTopicCrudV2::test_create_topic_name_constraints",
        "TestSNSPublishCrud::test_publish_wrong_arn_format",
        "TestSNSSubscriptionCrud::test_unsubscribe_wrong_arn_format",
        "TestSNSTopicCrudV2::test_topic_add_permission",
        "TestSNSTopicCrudV2::test_data_protection_policy_crud",
        "TestSNSPlatformApplicationCrud::test_create_platform_application_invalid_platform",
        "TestSNSSMS::test_set_invalid_sms_attributes[InvalidSMSType]",
        "TestSNSSubscriptionCrudV2::test_subscribe_attributes",  # the caller as SubscriptionPrincipal
    )),
    "events": tuple(f"{_EVENTS}/{test}" for test in (
        "test_events_tags.py::tests_tag_untag_resource[event_bus-event_bus_custom]",
        "test_events.py::TestEventBus::test_put_permission_non_existing_event_bus",
        "test_archive_and_replay.py::TestArchive::test_describe_archive_error_unknown_archive",
        "test_api_destinations_and_connection.py::TestEventBridgeApiDestinations::test_api_destinations[auth0]",
        "test_api_destinations_and_connection.py::TestEventBridgeConnections::test_create_connection",
        "test_events.py::TestEvents::test_put_events_exceed_limit_ten_entries[default]",
        "test_events_inputs.py::TestInputTransformer::test_put_events_with_input_transformer_missing_keys",
        "test_events_cross_account_region.py::TestEventsCrossAccountRegion::test_put_events[custom-account]",
    )),
    "dynamodb": tuple(f"{_DYNAMODB}::TestDynamoDB::{test}" for test in (
        "test_table_crud",
        "test_transaction_write_canceled",
        "test_dynamodb_execute_transaction",
        "test_kinesis_streaming_destination_crud",
        "test_dynamodb_describe_contributor_insights",
        "test_table_warm_throughput",
        "test_dynamodb_create_table_with_partial_sse_specification",
        "test_streams_on_global_tables",
        "test_transact_write_items_streaming",
    )),
    "iam": tuple(f"{_IAM}::{test}" for test in (
        "TestIAMServiceRoles::test_service_role_lifecycle[eks.amazonaws.com]",
        "TestIAMServiceRoles::test_service_role_lifecycle_custom_suffix[lexv2.amazonaws.com]",
        "TestIAMServiceRoles::test_service_role_lifecycle_custom_suffix_not_allowed[batch.amazonaws.com]",
        "TestIAMServiceRoles::test_service_role_deletion",
    )),
    # CloudFormation and SSM since their conformance round of 2026-12-06: error texts, template summaries,
    # a change set's lifecycle and the stack shapes around it (each a second or two).
    "cloudformation": tuple(f"{_CFN}/{test}" for test in (
        "test_changesets.py::test_describe_change_set_nonexisting",
        "test_changesets.py::test_delete_change_set_exception",
        "test_changesets.py::test_create_change_set_no_changes",
        "test_changesets.py::test_empty_changeset",
        "test_stacks.py::TestStacksApi::test_stack_description_lifecycle[no-tags]",
        "test_stacks.py::test_describe_stack_events_errors",
        "test_stacks.py::test_no_parameters_given",
        "test_templates.py::test_get_template_summary_no_resources",
        "test_templates.py::test_validate_template",
        "test_templates.py::test_get_template_missing_resources_change_set",
        "test_resources.py::test_describe_non_existent_stack",
    )),
    "ssm": tuple(f"{_SSM}::TestSSM::{test}" for test in (
        "test_describe_parameters",
        "test_get_parameter_by_arn",
        "test_parameters_with_path",
    )),
    # API Gateway (conformance round of 2026-12-06): control plane and MOCK invocations, well under a second each.
    "apigateway": tuple(f"{_APIGW}/{test}" for test in (
        "test_apigateway_api.py::TestApiGatewayApiResource::test_resource_lifecycle",
        "test_apigateway_api.py::TestApiGatewayApiMethod::test_put_method_validation",
        "test_apigateway_api.py::TestApiGatewayApiDocumentationPart::test_documentation_part_lifecycle",
        "test_apigateway_api.py::TestApiGatewayGatewayResponse::test_gateway_response_crud",
        "test_apigateway_api.py::TestApigatewayIntegrationResponse::test_lifecycle_integration_response",
        "test_apigateway_api.py::TestApigatewayMethodResponse::test_lifecycle_method_response",
        "test_apigateway_canary.py::TestStageCrudCanary::test_create_canary_deployment_by_stage_update",
        "test_apigateway_basic.py::TestIntegrations::test_mock_integration_response[WHEN_NO_MATCH-UrlType.PATH_BASED-GET]",
        "test_apigateway_integrations.py::test_integration_mock_with_response_override_in_request_template[True]",
        "test_apigateway_extended.py::TestApigatewayApiKeysCrud::test_update_api_key_immutable_field",
        "test_apigateway_extended.py::test_export_oas30_openapi[TEST_IMPORT_PETS]",
        "test_apigateway_s3.py::test_apigateway_s3_method_mapping",
        "test_apigateway_api.py::TestApiGatewayApiDocumentationPart::test_import_documentation_parts",
    )),
    # S3 (conformance round of 2026-12-06): ACLs, GetObjectAttributes, checksums, metrics configurations.
    "s3": tuple(f"{_S3}/{test}" for test in (
        "test_s3.py::TestS3::test_s3_bucket_acl",
        "test_s3.py::TestS3::test_s3_object_acl",
        "test_s3.py::TestS3PutObjectChecksum::test_s3_get_object_checksum[CRC64NVME]",
        "test_s3_api.py::TestS3MetricsConfiguration::test_list_bucket_metrics_configurations",
        "test_s3_api.py::TestS3MetricsConfiguration::test_delete_metrics_configuration_twice",
    )),
}


def missing(results: dict[str, list[CaseResult]]) -> list[str]:
    """The CI tests that produced no result at all (renamed, deselected, or the run stopped early)."""
    seen = {f"{r.file}::{r.test}" for rs in results.values() for r in rs}
    return [test for tests in TESTS.values() for test in tests if test not in seen]
