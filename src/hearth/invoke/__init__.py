"""The data plane's invoke path: environment pools, the lifecycle of one environment, sync and event
invocations, and the log lines AWS writes around them.

It owns which environment serves an invocation and what the caller gets back. It never isolates
processes itself (that is `hearth.sandbox`) nor speaks the Runtime API wire protocol
(that is `hearth.runtime_api`).
"""
