"""Hearth: a self-hosted serverless platform that speaks the AWS Lambda API."""

__version__ = "0.1.0"
