"""SNS-compatible topics: the `sns` API provider, topics and subscriptions, filter policies, delivery."""
