"""CloudWatch Logs (`logs`, JSON protocol): the API over Hearth's durable function logs."""
