"""Which incidents are firing, as far as the alerts topic has been read (pure).

The forwarder feeds it every alert record in topic order: a firing record opens its incident
(keyed by fingerprint), a resolution closes it. What it returns to send pairs each record with
the firing record that identifies its incident, so Alertmanager sees one label set per
incident. The open incidents are what the forwarder re-sends periodically and after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.alerts import Alert, AlertStatus
from workers.alerting.postable import Delivery

MAX_FIRING = 100_000
"""Incidents held open at most; past it the oldest is forgotten (it still resolves in
Alertmanager, with its own labels, or ends by its `endsAt`). The worker's key caps keep the
real number far below."""


class DeliveryBook:
    def __init__(self, max_firing: int = MAX_FIRING) -> None:
        self.max_firing = max_firing
        self._firing: dict[str, Alert] = {}

    def __len__(self) -> int:
        return len(self._firing)

    def observe(self, alert: Alert) -> Delivery:
        """Take one record in topic order; what to send for it."""
        if alert.status is AlertStatus.FIRING:
            self._firing.pop(alert.fingerprint, None)  # re-fired: newest last
            self._firing[alert.fingerprint] = alert
            while len(self._firing) > self.max_firing:
                del self._firing[next(iter(self._firing))]
            return Delivery(alert, alert)
        firing = self._firing.pop(alert.fingerprint, None)
        return Delivery(alert, firing or alert)

    def firing(self) -> Iterable[Delivery]:
        """Every open incident, to re-send."""
        return [Delivery(alert, alert) for alert in self._firing.values()]
