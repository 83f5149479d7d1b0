"""SSM-compatible Parameter Store: parameters, versions, labels, tags."""
