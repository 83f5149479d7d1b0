"""Function URLs' HTTP front: requests to `<url-id>.lambda-url.<region>.localhost` (or the path form
`/_hearth/url/<url-id>/…`) become payload format 2.0 events, and the function's answer becomes the HTTP
response, as AWS does for function URLs.

Modules: `event` (request -> event), `response` (result -> HTTP), `cors`, `front` (the ASGI handler:
routing, auth, invoke, streaming). Configurations are stored by `hearth.services.lambda_.urls`.
"""
