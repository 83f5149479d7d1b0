"""Kinesis-compatible data streams: shards, records, iterators and retention."""
