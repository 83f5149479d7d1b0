"""Observability of the platform itself: metrics (Prometheus text at `/_hearth/metrics`).

Function logs are a service's domain (CloudWatch Logs, `hearth.services.logs`), not this package's.
Nothing here is called from the invoke hot path in a way that can block for long or fail an invocation.
"""
