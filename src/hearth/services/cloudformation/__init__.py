"""CloudFormation-compatible stacks with the SAM transform."""
