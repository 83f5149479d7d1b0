"""The Lambda control-plane domain: functions, versions, configuration, code, limits.

It owns the rules of what a function is and which states it may be in. It must never start
environments or invoke code (that is `hearth.invoke` and `hearth.sandbox`), nor know wire formats.
"""
