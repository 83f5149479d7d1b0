"""Wire protocols of AWS services, one module each (rest_json, json_, query) plus shared helpers.

Each module reads a request into an operation's input parameters and writes outputs and errors the
way botocore's parsers read them. None of them authenticates, routes between services or validates
constraints: the gateway, `models` and `validate` do.
"""
