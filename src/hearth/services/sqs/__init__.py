"""SQS-compatible queues: the `sqs` API provider, the durable queue domain, and its helpers."""
