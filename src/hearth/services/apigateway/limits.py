"""API keys and usage plans on the request path: which key a request presents, whether a usage plan
covering the API's stage holds it, and the plan's throttle (a token bucket of `rateLimit` per second
and `burstLimit` tokens) and quota (`limit` requests per DAY/WEEK/MONTH period).

Answers are AWS's: 403 `{"message":"Forbidden"}` without a valid key, 429 `Too Many Requests` when
throttled, 429 `Limit Exceeded` over the quota. Counters live in memory (a restart starts new
periods), which is a deliberate simplification. It never changes keys or plans.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

FORBIDDEN = b'{"message":"Forbidden"}'
THROTTLED = b'{"message":"Too Many Requests"}'
QUOTA = b'{"message":"Limit Exceeded"}'
_PERIOD_S = {"DAY": 86_400, "WEEK": 7 * 86_400, "MONTH": 30 * 86_400}


class UsageLimits:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (plan, key) -> (tokens, at)
        self._quota: dict[tuple[str, str], tuple[int, int]] = {}  # (plan, key) -> (period index, used)

    @staticmethod
    def _key(account_doc: dict[str, Any] | None, value: str | None) -> dict[str, Any] | None:
        if account_doc is None or not value:
            return None
        return next((k for k in account_doc.get("apiKeys", {}).values() if k.get("value") == value), None)

    def key_id(self, account_doc: dict[str, Any] | None, value: str | None) -> str | None:
        key = self._key(account_doc, value)
        return key["id"] if key else None

    def check(self, account_doc: dict[str, Any] | None, value: str | None, api_id: str,
              stage: str) -> tuple[int, bytes] | None:
        key = self._key(account_doc, value)
        if key is None or not key.get("enabled") or account_doc is None:
            return 403, FORBIDDEN
        plan = next((p for p in account_doc.get("usagePlans", {}).values()
                     if key["id"] in p.get("_keys", {})
                     and any(s.get("apiId") == api_id and s.get("stage") == stage for s in p.get("apiStages", []))),
                    None)
        if plan is None:
            return 403, FORBIDDEN
        now = self._clock()
        ident = (plan["id"], key["id"])
        throttle = plan.get("throttle") or {}
        rate = float(throttle.get("rateLimit") or 0)
        burst = float(throttle.get("burstLimit") or 0)
        if rate > 0 or burst > 0:
            capacity = max(burst, 1.0)
            tokens, at = self._buckets.get(ident, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[ident] = (tokens, now)
                return 429, THROTTLED
            self._buckets[ident] = (tokens - 1.0, now)
        quota = plan.get("quota") or {}
        limit = int(quota.get("limit") or 0)
        if limit > 0:
            period = _PERIOD_S.get(str(quota.get("period", "DAY")), 86_400)
            index = int(now // period)
            current, used = self._quota.get(ident, (index, 0))
            if current != index:
                used = 0
            if used >= limit:
                return 429, QUOTA
            self._quota[ident] = (index, used + 1)
        return None
