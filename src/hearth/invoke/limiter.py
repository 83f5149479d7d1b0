"""The concurrency limiter: the one owner of how many invocations run at once, per account and function.

AWS's model, per account and region:

    account limit (ConcurrentExecutions, default 1000)
    ├── reserved pools      one per function with ReservedConcurrentExecutions = R: at most R in flight,
    │                       and nobody else may use those R (0 disables the function)
    ├── provisioned floors  functions WITHOUT reserved concurrency but with provisioned concurrency P:
    │                       P slots taken out of the shared pool for them (provisioned concurrency of a
    │                       function WITH reserved concurrency lives inside its reserved pool)
    └── unreserved pool     everything else, shared: limit - sum(reserved) - sum(provisioned floors);
                            AWS keeps at least 100 of it (UnreservedConcurrentExecutions minimum)

A function at its reserved limit is throttled with Reason ReservedFunctionConcurrentInvocationLimitExceeded;
a function without reservation when the shared pool is full, with ConcurrentInvocationLimitExceeded.

Two ways in: `try_acquire(fv)` (never waits: the synchronous path answers 429 and the async queue keeps
its event for later) and `await acquire(fv, wait=True)` (waits, first come first served, until a slot
frees). Every grant is a `Lease`; releasing it twice is harmless. It also keeps the reserved values
durably (`ConcurrencyStore`, component "concurrency" of hearth.db).

It never runs, queues or retries an invocation itself, and never renders AWS errors other than its own
throttle (`Throttled`, a 429 the gateway renders as AWS does).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import math
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from hearth.functions.model import FunctionVersion
from hearth.invoke.errors import Throttled, ThrottleReason
from hearth.store.component import ComponentDb

log = logging.getLogger(__name__)

MIN_UNRESERVED = 100  # AWS keeps at least this much of the account limit unreserved

AccountKey = tuple[str, str]  # (account id, region)
K = TypeVar("K", bound=Hashable)


class Bucket(enum.Enum):
    RESERVED = "reserved"
    PROVISIONED = "provisioned"
    UNRESERVED = "unreserved"


@dataclass(eq=False)
class Lease:
    """One running invocation's slot. `release()` gives it back (idempotent)."""

    limiter: ConcurrencyLimiter
    function_arn: str
    qualifier: str
    account: AccountKey
    bucket: Bucket
    slot: str | None = None  # the provisioned slot's version ("*": any), for Bucket.PROVISIONED
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.limiter._release(self)


class ClusterSlots(Protocol):
    """Cluster-wide concurrency (hearth.cluster.membership): slots of functions with reserved
    concurrency, and this node's share of the account's unreserved pool."""

    def take_slot(self, function_arn: str, limit: int) -> bool: ...
    def give_slot(self, function_arn: str) -> None: ...
    def account_share(self) -> float: ...


# In a cluster: how often, at most, the limiter looks whether another node changed a reservation.
CLUSTER_RELOAD_S = 0.5


class ConcurrencyStore:
    """Reserved concurrency per function, durable (survives restarts), in hearth.db."""

    MIGRATIONS = (
        """
        CREATE TABLE reserved_concurrency (
            function_arn TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            region TEXT NOT NULL,
            reserved INTEGER NOT NULL
        );
        """,
    )

    def __init__(self, data_dir: Path) -> None:
        # track_changes: in a cluster, a reservation set through another node reaches this node's limiter.
        self._db = ComponentDb(data_dir, "concurrency", self.MIGRATIONS, track_changes=True)

    def changed_elsewhere(self) -> bool:
        return self._db.changed_elsewhere()

    def load(self) -> list[tuple[str, str, str, int]]:
        rows = self._db.query("SELECT function_arn, account, region, reserved FROM reserved_concurrency")
        return [(r["function_arn"], r["account"], r["region"], int(r["reserved"])) for r in rows]

    def put(self, function_arn: str, account: str, region: str, reserved: int) -> None:
        with self._db.tx() as db:
            db.execute("INSERT INTO reserved_concurrency (function_arn, account, region, reserved) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (function_arn) DO UPDATE SET reserved = excluded.reserved",
                       (function_arn, account, region, reserved))

    def delete(self, function_arn: str) -> None:
        with self._db.tx() as db:
            db.execute("DELETE FROM reserved_concurrency WHERE function_arn = ?", (function_arn,))

    def close(self) -> None:
        self._db.close()


@dataclass
class _Waiter:
    fv: FunctionVersion
    future: asyncio.Future[Lease]


class ConcurrencyLimiter:
    def __init__(self, account_limit: int = 1000, store: ConcurrencyStore | None = None,
                 *, min_unreserved: int = MIN_UNRESERVED, cluster: ClusterSlots | None = None) -> None:
        self.account_limit = account_limit
        # In a cluster: reserved concurrency holds across every node (a slot is taken in the database
        # for each invocation of a function with a reservation); the unreserved pool is divided between
        # the alive nodes by capacity (no database write per invocation), and placement sends work
        # past a node's share to another node (hearth.cluster.placement).
        self._cluster = cluster
        self._next_reload = 0.0
        self.min_unreserved = min_unreserved
        self._store = store
        self._reserved: dict[str, int] = {}
        self._reserved_account: dict[str, AccountKey] = {}
        self._reserved_total: collections.Counter[AccountKey] = collections.Counter()
        self._provisioned: dict[str, int] = {}  # function ARN -> provisioned total over its qualifiers
        # (function ARN, version) -> provisioned slots of that version; version "*" means any version
        # (a caller that gave only a total).
        self._provisioned_version: dict[tuple[str, str], int] = {}
        self._provisioned_account: dict[str, AccountKey] = {}
        self._in_flight: collections.Counter[str] = collections.Counter()  # function ARN
        self._in_flight_qualifier: collections.Counter[tuple[str, str]] = collections.Counter()
        self._provisioned_in_flight: collections.Counter[str] = collections.Counter()  # function ARN
        self._provisioned_in_flight_version: collections.Counter[tuple[str, str]] = collections.Counter()
        self._unreserved_in_flight: collections.Counter[AccountKey] = collections.Counter()
        self._account_in_flight: collections.Counter[AccountKey] = collections.Counter()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self.throttles: collections.Counter[tuple[str, str]] = collections.Counter()  # (arn, reason)
        self.granted = 0
        if store is not None:
            for function_arn, account, region, reserved in store.load():
                self._set_reserved_memory(function_arn, (account, region), reserved)

    # -- configuration --------------------------------------------------------------------------

    def reserved(self, function_arn: str) -> int | None:
        if self._cluster is not None:
            self._reload_if_changed()  # GetFunctionConcurrency answers what any node set
        return self._reserved.get(function_arn)

    def unreserved_capacity(self, account: str, region: str) -> int:
        """UnreservedConcurrentExecutions: the shared pool (limit minus reservations and provisioned floors)."""
        key = (account, region)
        floors = sum(n for arn, n in self._provisioned.items()
                     if self._provisioned_account.get(arn) == key and arn not in self._reserved)
        return self.account_limit - self._reserved_total[key] - floors

    def unreserved_if(self, account: str, region: str, function_arn: str, reserved: int | None) -> int:
        """What UnreservedConcurrentExecutions would become if `function_arn` reserved `reserved`."""
        key = (account, region)
        current = self._reserved.get(function_arn)
        total = self._reserved_total[key] - (current or 0) + (reserved or 0)
        floors = sum(n for arn, n in self._provisioned.items()
                     if self._provisioned_account.get(arn) == key and arn != function_arn
                     and arn not in self._reserved)
        if reserved is None:
            floors += self._provisioned.get(function_arn, 0)
        return self.account_limit - total - floors

    def set_reserved(self, function_arn: str, account: str, region: str, reserved: int | None) -> None:
        """Set (or with None remove) a function's reserved concurrency, durably. Callers check AWS's rules."""
        if self._store is not None:
            if reserved is None:
                self._store.delete(function_arn)
            else:
                self._store.put(function_arn, account, region, reserved)
        self._set_reserved_memory(function_arn, (account, region), reserved)
        self._wake()  # a larger pool may let waiters in

    def _set_reserved_memory(self, function_arn: str, key: AccountKey, reserved: int | None) -> None:
        old = self._reserved.pop(function_arn, None)
        if old is not None:
            self._reserved_total[self._reserved_account.pop(function_arn)] -= old
        if reserved is not None:
            self._reserved[function_arn] = reserved
            self._reserved_account[function_arn] = key
            self._reserved_total[key] += reserved

    def set_provisioned(self, function_arn: str, account: str, region: str, total: int,
                        by_version: dict[str, int] | None = None) -> None:
        """The function's provisioned concurrency summed over its versions and aliases (0 removes it),
        and how it splits over the versions the configurations resolve to (an alias's count belongs
        to the version it points at). Without `by_version` the slots serve any version.

        The provisioned-concurrency component calls this; the limiter only accounts for the slots.
        """
        for key in [k for k in self._provisioned_version if k[0] == function_arn]:
            del self._provisioned_version[key]
        if total > 0:
            self._provisioned[function_arn] = total
            self._provisioned_account[function_arn] = (account, region)
            for version, n in (by_version if by_version is not None else {"*": total}).items():
                if n > 0:
                    self._provisioned_version[(function_arn, version)] = n
        else:
            self._provisioned.pop(function_arn, None)
            self._provisioned_account.pop(function_arn, None)
        self._wake()

    def provisioned_versions(self, function_arn: str) -> dict[str, int]:
        return {v: n for (arn, v), n in self._provisioned_version.items() if arn == function_arn}

    def provisioned(self, function_arn: str) -> int:
        return self._provisioned.get(function_arn, 0)

    def forget_function(self, function_arn: str) -> None:
        """The function was deleted: its reservation goes with it (in-flight leases still release)."""
        if function_arn in self._reserved:
            key = self._reserved_account[function_arn]
            self.set_reserved(function_arn, key[0], key[1], None)
        self._provisioned.pop(function_arn, None)
        self._provisioned_account.pop(function_arn, None)
        for key in [k for k in self._provisioned_version if k[0] == function_arn]:
            del self._provisioned_version[key]

    # -- leases ---------------------------------------------------------------------------------

    def try_acquire(self, fv: FunctionVersion) -> Lease | None:
        """A slot now, or None (the caller keeps its event for later or answers 429)."""
        granted = self._grant(fv)
        return granted if isinstance(granted, Lease) else None

    async def acquire(self, fv: FunctionVersion, *, wait: bool = False) -> Lease:
        """A slot; without `wait` raises `Throttled` at once, with it waits (FIFO) until one frees."""
        granted = self._grant(fv)
        if isinstance(granted, Lease):
            return granted
        if not wait:
            self.throttles[(fv.function_arn, granted.value)] += 1
            raise Throttled(granted, reserved=self._reserved.get(fv.function_arn))
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(fv, future)
        self._waiters.append(waiter)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                future.result().release()  # granted just as we were cancelled: give it back
            raise
        finally:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                pass

    def _provisioned_slot(self, fv: FunctionVersion) -> tuple[str, str] | None:
        """The (ARN, version) provisioned slot `fv` may take now, or None when its own are all busy."""
        for version in (fv.version, "*"):
            slot = (fv.function_arn, version)
            if self._provisioned_in_flight_version[slot] < self._provisioned_version.get(slot, 0):
                return slot
        return None

    def throttle_reason(self, fv: FunctionVersion) -> ThrottleReason | None:
        """Why an invocation of `fv` would be throttled right now, or None if it would run."""
        arn = fv.function_arn
        if self._provisioned_slot(fv) is not None:
            return None
        reserved = self._reserved.get(arn)
        if reserved is not None:
            # Provisioned concurrency lives inside the reservation: what spills over from the
            # provisioned versions, and every other version, shares only the rest (AWS: reserved 1 with
            # provisioned 1 on version 1 throttles $LATEST, recorded).
            spilled = self._in_flight[arn] - self._provisioned_in_flight[arn]
            return ThrottleReason.RESERVED if spilled >= reserved - self._provisioned.get(arn, 0) else None
        key = (fv.account_id, fv.region)
        capacity = self.unreserved_capacity(*key)
        if self._cluster is not None:  # this node's part: the parts of all nodes never add up to more
            capacity = math.floor(capacity * self._cluster.account_share())
        if self._unreserved_in_flight[key] >= capacity:
            return ThrottleReason.ACCOUNT
        return None

    def record_throttle(self, fv: FunctionVersion, reason: ThrottleReason) -> None:
        """Callers that refuse on their own after `try_acquire` failed (async queue) count it here."""
        self.throttles[(fv.function_arn, reason.value)] += 1

    def _reload_if_changed(self) -> None:
        """Cluster: another node's PutFunctionConcurrency reaches this limiter within CLUSTER_RELOAD_S."""
        now = time.monotonic()
        if self._store is None or now < self._next_reload:
            return
        self._next_reload = now + CLUSTER_RELOAD_S
        if self._store.changed_elsewhere():
            stored = {arn: (account, region, reserved) for arn, account, region, reserved in self._store.load()}
            for arn in list(self._reserved):
                if arn not in stored:
                    self._set_reserved_memory(arn, self._reserved_account[arn], None)
            for arn, (account, region, reserved) in stored.items():
                self._set_reserved_memory(arn, (account, region), reserved)

    def _grant(self, fv: FunctionVersion) -> Lease | ThrottleReason:
        if self._cluster is not None:
            self._reload_if_changed()
        reason = self.throttle_reason(fv)
        if reason is not None:
            return reason
        arn = fv.function_arn
        key = (fv.account_id, fv.region)
        slot = self._provisioned_slot(fv)
        if slot is not None:
            bucket = Bucket.PROVISIONED
            self._provisioned_in_flight[arn] += 1
            self._provisioned_in_flight_version[slot] += 1
        elif arn in self._reserved:
            if self._cluster is not None and not self._cluster.take_slot(
                    arn, self._reserved[arn] - self._provisioned.get(arn, 0)):
                return ThrottleReason.RESERVED  # every slot is in flight, somewhere in the cluster
            bucket = Bucket.RESERVED
        else:
            bucket = Bucket.UNRESERVED
            self._unreserved_in_flight[key] += 1
        self._in_flight[arn] += 1
        self._in_flight_qualifier[(arn, fv.version)] += 1
        self._account_in_flight[key] += 1
        self.granted += 1
        return Lease(self, arn, fv.version, key, bucket, slot=slot[1] if slot is not None else None)

    def _release(self, lease: Lease) -> None:
        _decrement(self._in_flight, lease.function_arn)
        _decrement(self._in_flight_qualifier, (lease.function_arn, lease.qualifier))
        _decrement(self._account_in_flight, lease.account)
        if lease.bucket is Bucket.PROVISIONED:
            _decrement(self._provisioned_in_flight, lease.function_arn)
            _decrement(self._provisioned_in_flight_version, (lease.function_arn, lease.slot or "*"))
        elif lease.bucket is Bucket.UNRESERVED:
            _decrement(self._unreserved_in_flight, lease.account)
        elif lease.bucket is Bucket.RESERVED and self._cluster is not None:
            try:
                self._cluster.give_slot(lease.function_arn)
            except Exception:  # the database is away: the slot is freed when this node restarts or dies
                log.warning("could not give back a cluster slot of %s", lease.function_arn, exc_info=True)
        self._wake()

    def _wake(self) -> None:
        """Grant freed slots to waiters in arrival order; a waiter that still cannot run keeps its place
        without blocking others of other functions (a full reserved pool must not stall the account)."""
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            granted = self._grant(waiter.fv)
            if isinstance(granted, Lease):
                waiter.future.set_result(granted)

    # -- reading --------------------------------------------------------------------------------

    def in_flight(self, function_arn: str | None = None) -> int:
        if function_arn is None:
            return sum(self._account_in_flight.values())
        return self._in_flight[function_arn]

    def in_flight_by_qualifier(self) -> dict[tuple[str, str], int]:
        return {k: v for k, v in self._in_flight_qualifier.items() if v}

    def statistics(self) -> dict[str, object]:
        accounts = {f"{a}/{r}": {
            "limit": self.account_limit,
            "reserved": self._reserved_total[(a, r)],
            "unreserved_capacity": self.unreserved_capacity(a, r),
            "unreserved_in_flight": self._unreserved_in_flight[(a, r)],
            "in_flight": self._account_in_flight[(a, r)],
        } for (a, r) in set(self._account_in_flight) | set(self._reserved_total)}
        return {
            "account_limit": self.account_limit,
            "in_flight": self.in_flight(),
            "granted": self.granted,
            "waiters": len(self._waiters),
            "throttles": sum(self.throttles.values()),
            "accounts": accounts,
            "functions": {arn: {"in_flight": n, "reserved": self._reserved.get(arn),
                                "provisioned": self._provisioned.get(arn, 0)}
                          for arn, n in self._in_flight.items() if n},
        }

    def close(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        if self._store is not None:
            self._store.close()


def _decrement(counter: collections.Counter[K], key: K) -> None:
    value = counter[key] - 1
    if value > 0:
        counter[key] = value
    else:
        counter.pop(key, None)
