"""Observability: function logs (durable, CloudWatch-shaped), later metrics and traces.

Nothing here is called from the invoke hot path in a way that can block for long or fail an invocation.
"""
