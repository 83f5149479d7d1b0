"""API Gateway: REST APIs (`apigateway`) and HTTP APIs (`apigatewayv2`) — control planes and data plane.

One package for both API kinds: they share the signing name "apigateway", one durable store, the
`execute-api` front door and the Lambda proxy machinery. `rest.py` and `v2.py` are the two providers.
"""
