"""Sandboxes: isolated process trees that execution environments run in.

It owns *how* code is isolated (namespaces, cgroups, an unprivileged uid, a private root, the
plain-process fallback) and never *what* runs or why (that is `hearth.invoke` and the runtimes).
"""
