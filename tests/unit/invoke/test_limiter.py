"""The concurrency limiter: reserved pools, the shared pool, throttle reasons, waiting, durability."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.invoke.limiter import ConcurrencyLimiter, ConcurrencyStore
from hearth.services.lambda_.errors import to_aws


def fv(name: str, account: str = "000000000000", version: str = "$LATEST") -> FunctionVersion:
    return FunctionVersion(
        account_id=account, region="us-east-1", name=name, version=version,
        function_arn=f"arn:aws:lambda:us-east-1:{account}:function:{name}", runtime="python3.11",
        handler="app.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={},
        code_dir=Path("/nonexistent"), code_sha256="0" * 64, revision_id="r", state="Active",
    )


async def test_reserved_zero_throttles_with_reserved_reason() -> None:
    limiter = ConcurrencyLimiter(1000)
    f = fv("f")
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 0)
    assert limiter.try_acquire(f) is None
    with pytest.raises(Throttled) as info:
        await limiter.acquire(f)
    assert info.value.reason is ThrottleReason.RESERVED
    answer = to_aws(info.value)  # as the Lambda providers answer it
    assert (answer.status, answer.code, answer.message) == (429, "TooManyRequestsException", "Rate Exceeded.")
    assert answer.fields == {"Type": "User", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}


async def test_reserved_limit_and_release() -> None:
    limiter = ConcurrencyLimiter(1000)
    f = fv("f")
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 1)
    lease = await limiter.acquire(f)
    assert limiter.throttle_reason(f) is ThrottleReason.RESERVED
    lease.release()
    lease.release()  # idempotent
    assert limiter.in_flight() == 0
    assert limiter.try_acquire(f) is not None


async def test_account_limit_uses_shared_pool_reason() -> None:
    limiter = ConcurrencyLimiter(2)
    a, b = fv("a"), fv("b")
    la, lb = limiter.try_acquire(a), limiter.try_acquire(b)
    assert la is not None and lb is not None
    with pytest.raises(Throttled) as info:
        await limiter.acquire(a)
    assert info.value.reason is ThrottleReason.ACCOUNT
    assert limiter.statistics()["throttles"] == 1


async def test_reserved_capacity_is_not_shared() -> None:
    limiter = ConcurrencyLimiter(3)
    r, other = fv("r"), fv("other")
    limiter.set_reserved(r.function_arn, r.account_id, r.region, 2)
    assert limiter.unreserved_capacity(r.account_id, r.region) == 1
    assert limiter.try_acquire(other) is not None
    assert limiter.try_acquire(other) is None  # the reserved 2 are not the other function's
    assert limiter.try_acquire(r) is not None and limiter.try_acquire(r) is not None
    assert limiter.try_acquire(r) is None


async def test_accounts_are_separate() -> None:
    limiter = ConcurrencyLimiter(1)
    assert limiter.try_acquire(fv("f", "000000000000")) is not None
    assert limiter.try_acquire(fv("f", "111111111111")) is not None


async def test_provisioned_floor_comes_out_of_the_shared_pool() -> None:
    limiter = ConcurrencyLimiter(10)
    p = fv("p")
    limiter.set_provisioned(p.function_arn, p.account_id, p.region, 3)
    assert limiter.unreserved_capacity(p.account_id, p.region) == 7
    leases = [limiter.try_acquire(p) for _ in range(3)]
    assert all(leases)
    assert limiter.unreserved_if(p.account_id, p.region, p.function_arn, 5) == 5
    assert limiter.provisioned(p.function_arn) == 3


async def test_waiters_get_slots_in_order() -> None:
    limiter = ConcurrencyLimiter(1000)
    f = fv("f")
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 1)
    first = await limiter.acquire(f)
    waiting = asyncio.create_task(limiter.acquire(f, wait=True))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert limiter.statistics()["waiters"] == 1
    first.release()
    second = await asyncio.wait_for(waiting, 1)
    assert limiter.in_flight(f.function_arn) == 1
    second.release()


async def test_waiter_released_by_raising_the_reservation() -> None:
    limiter = ConcurrencyLimiter(1000)
    f = fv("f")
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 0)
    waiting = asyncio.create_task(limiter.acquire(f, wait=True))
    await asyncio.sleep(0)
    limiter.set_reserved(f.function_arn, f.account_id, f.region, None)
    lease = await asyncio.wait_for(waiting, 1)
    lease.release()


async def test_cancelled_waiter_leaves_no_slot_behind() -> None:
    limiter = ConcurrencyLimiter(1000)
    f = fv("f")
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 0)
    waiting = asyncio.create_task(limiter.acquire(f, wait=True))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.statistics()["waiters"] == 0
    assert limiter.in_flight() == 0


def test_reserved_survives_a_restart(tmp_path: Path) -> None:
    f = fv("f")
    limiter = ConcurrencyLimiter(1000, ConcurrencyStore(tmp_path))
    limiter.set_reserved(f.function_arn, f.account_id, f.region, 7)
    limiter.close()
    again = ConcurrencyLimiter(1000, ConcurrencyStore(tmp_path))
    assert again.reserved(f.function_arn) == 7
    assert again.unreserved_capacity(f.account_id, f.region) == 993
    again.forget_function(f.function_arn)
    again.close()
    third = ConcurrencyLimiter(1000, ConcurrencyStore(tmp_path))
    assert third.reserved(f.function_arn) is None
    third.close()
