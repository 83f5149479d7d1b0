"""Event source mappings: the durable mappings, their state machine, and the pollers that feed functions."""
