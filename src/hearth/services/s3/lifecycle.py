"""Lifecycle expiration: a sweep (every LIFECYCLE_INTERVAL_S and when a configuration changes)
that expires objects by Expiration Date/Days (rounded to midnight UTC, as AWS does) and aborts
incomplete multipart uploads, with S3's LifecycleExpiration notifications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime

from hearth.aws.context import RequestContext
from hearth.services.s3.core import S3Core
from hearth.services.s3.rules import (
    LIFECYCLE_INTERVAL_S,
    LIFECYCLE_PRINCIPAL,
    next_midnight,
    rule_filter,
    size_matches,
    wall_clock,
)
from hearth.services.s3.store import Bucket, ObjectRow

log = logging.getLogger(__name__)


class LifecycleOps(S3Core):

    def start(self) -> None:
        """Starts the lifecycle sweep (every LIFECYCLE_INTERVAL_S, and when a configuration changes)."""
        self._lifecycle_task = asyncio.get_running_loop().create_task(self._lifecycle_loop())

    async def close(self) -> None:
        if self._lifecycle_task is not None:
            self._lifecycle_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lifecycle_task
            self._lifecycle_task = None

    async def _lifecycle_loop(self) -> None:
        while True:
            self._lifecycle_wake.clear()
            try:
                if self._sweep_gate is None or self._sweep_gate():
                    self.expire_lifecycle(wall_clock())
            except Exception:
                log.exception("s3 lifecycle sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lifecycle_wake.wait(), LIFECYCLE_INTERVAL_S)

    def expire_lifecycle(self, now: float) -> int:
        """Applies every enabled Expiration and AbortIncompleteMultipartUpload rule; returns how many
        objects expired. An object expires at the first midnight UTC after `Days` have passed since it
        was written (as AWS rounds), or once `Date` has come."""
        expired = 0
        ctx = RequestContext(service="s3", operation="LifecycleExpiration", region=self._region,
                             principal=LIFECYCLE_PRINCIPAL, request_id=str(uuid.uuid4()), source_ip="s3.amazonaws.com")
        for bucket in self._store.all_buckets():
            for rule in (bucket.config.get("lifecycle") or {}).get("Rules") or []:
                if rule.get("Status") != "Enabled":
                    continue
                prefix, tags = rule_filter(rule)
                expiration = rule.get("Expiration") or {}
                cutoff_date = expiration.get("Date")
                days = expiration.get("Days")
                if cutoff_date is not None or days is not None:
                    for row in self._store.list_latest(bucket.name, prefix, "", 100_000):
                        if tags and not all(t in (row.meta.get("Tags") or []) for t in tags):
                            continue
                        if not size_matches(rule, row.size):
                            continue
                        if cutoff_date is not None:
                            due = datetime.fromisoformat(str(cutoff_date).replace("Z", "+00:00")).timestamp()
                        else:
                            due = next_midnight(row.last_modified + int(days or 0) * 86400)
                        if now >= due:
                            self._expire(ctx, bucket, row)
                            expired += 1
                abort = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
                if abort is not None:
                    for upload_id, key, created, _ in self._store.uploads(bucket.name):
                        if key.startswith(prefix) and now >= next_midnight(created + int(abort) * 86400):
                            self._files.remove(self._store.abort_upload(upload_id))
        return expired

    def _expire(self, ctx: RequestContext, bucket: Bucket, row: ObjectRow) -> None:
        if not bucket.versioning:
            freed = self._store.delete_version(bucket.name, row.key, row.version_id,
                                               lambda r: self._events(ctx, bucket, "LifecycleExpiration:Delete", r))
            self._files.remove(freed)
        else:
            marker = ObjectRow(bucket.name, row.key, "", True, True, [], 0, "", wall_clock(), {})
            self._commit(ctx, bucket, marker, "LifecycleExpiration:DeleteMarkerCreated")
        if bucket.config.get("notification"):
            self._dispatcher.notify()
