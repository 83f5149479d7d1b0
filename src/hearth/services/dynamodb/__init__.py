"""DynamoDB-compatible tables and DynamoDB Streams."""
