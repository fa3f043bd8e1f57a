"""Ships the event spool to the data plane's EventIngress.

Reads the oldest unacknowledged records, sends them as one batch with the node
credential, and acknowledges (deletes) them only when the ingress answered: accepted,
duplicate and refused events are all settled by an answer (refused events are malformed
or foreign and would be refused forever). Any failure leaves the spool untouched and is
retried with exponential backoff and jitter, for as long as it takes; the spool's disk
budget bounds what an outage of hours costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from edge_sidecar.errors import CredentialRejectedError, IngressUnavailableError
from edge_sidecar.ingress_client import IngressClient
from edge_sidecar.spool import EventSpool

logger = logging.getLogger(__name__)


class ShipperMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.shipped = Counter(
            "tidecast_edge_events_shipped",
            "Spooled events settled by the ingress, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "tidecast_edge_ship_failures", "Batches the ingress did not take", registry=registry
        )
        self.last_success = Gauge(
            "tidecast_edge_ship_last_success_timestamp",
            "Unix time of the last batch the ingress answered",
            registry=registry,
        )


class EventShipper:
    def __init__(
        self,
        spool: EventSpool,
        client: IngressClient,
        metrics: ShipperMetrics,
        *,
        batch_events: int = 1000,
        idle_interval_s: float = 0.2,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._spool = spool
        self._client = client
        self._metrics = metrics
        self._batch_events = batch_events
        self._idle_interval_s = idle_interval_s
        self._max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.last_success: float | None = None
        self.rejected = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-shipper")

    def wake(self) -> None:
        """Ship now instead of at the next idle tick (new events were spooled)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def ship_once(self) -> int:
        """Sends one batch; returns the records settled. Raises when the ingress did not answer."""
        records = self._spool.read(self._batch_events)
        if not records:
            return 0
        response = await self._client.publish([r.payload for r in records])
        self._spool.ack(records[-1].sequence + 1)
        self._metrics.shipped.labels("accepted").inc(response.accepted)
        self._metrics.shipped.labels("duplicate").inc(response.duplicates)
        if response.rejected:
            self.rejected += len(response.rejected)
            self._metrics.shipped.labels("rejected").inc(len(response.rejected))
            first = response.rejected[0]
            logger.warning(
                "ingress refused %d of %d events (first: %s)",
                len(response.rejected),
                len(records),
                first.reason,
            )
        self.last_success = time.monotonic()
        self._metrics.last_success.set(time.time())
        return len(records)

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            try:
                settled = await self.ship_once()
                backoff = 0.0
                if settled >= self._batch_events:
                    continue  # more is waiting
                await self._idle()
            except (IngressUnavailableError, CredentialRejectedError) as exc:
                self._metrics.failures.inc()
                if isinstance(exc, IngressUnavailableError) and exc.too_large:
                    self._batch_events = max(1, self._batch_events // 2)
                backoff = min(self._max_backoff_s, max(0.5, backoff * 2))
                delay = backoff * random.uniform(0.5, 1.0)
                logger.warning("shipping events failed, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
            except Exception:
                logger.exception("event shipper failed unexpectedly; retrying")
                await asyncio.sleep(self._max_backoff_s)

    async def _idle(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self._idle_interval_s)
