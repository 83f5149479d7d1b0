"""A minimal AWS KMS-compatible key registry: AWS managed keys that other services use: see keys.py and provider.py."""
