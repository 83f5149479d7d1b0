"""The AWS protocol layer: SigV4, request parsing and response rendering driven by botocore's models.

It owns the wire format of every AWS-compatible service Hearth serves. It must never hold business
rules of a service: providers in `hearth.services` do that.
"""
