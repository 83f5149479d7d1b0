"""AWS-compatible services: one package per service, one provider method per operation.

A provider is a plain object with one `async def` per operation, named in snake_case after the
operation (`CreateFunction` -> `create_function`), taking `(ctx: RequestContext, params: dict)` and
returning the output shape as a dict (or a `hearth.services.base.RawResponse` for streaming or
non-modeled bodies). Providers raise `hearth.aws.errors.AwsError` for every caller-visible error.
They must never parse or render wire formats themselves.
"""
