"""AWS conformance, measured with LocalStack's AWS-validated tests run against a Hearth server.

`./run conformance [SERVICE…] [-k EXPR]` (`python -m hearth.conformance`) owns the whole measurement:
the Python ≥ 3.12 environment LocalStack's test framework needs (`environment`), a throw-away Hearth
server (`server`), the pytest run in that environment with a small plugin that marks what cannot be
judged here (`plugin`, which runs in the other interpreter), and the verdicts read back from the
JUnit XML (`results`) and printed as a table and a JSON summary (`report`). `ci` names the small part
CI runs on every change.

It never edits the tests, their snapshots or their conftest: it copies them to a scratch directory
and runs the copy, so a difference from AWS is fixed in the product or not at all.
"""
