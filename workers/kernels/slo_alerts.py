"""An SLO's multiwindow, multi-burn-rate alerts (Google SRE Workbook): which tiers fire, and
which alert of each notify kind is open (the rules are in `workers.kernels.slo`'s docstring,
"Tiers" and "Alerts").

`BurnAlerts` reads the burn rates off the tracker's `SloWindows` and returns what changed; the
tracker (`slo.SloTracker`) decides when to ask (after a count that could change a decision, at
every instant a window's sums fall) and owns time, periods and no-data.
"""

from __future__ import annotations

from workers.kernels.slo_config import BurnRateTier, Notify, window_name
from workers.kernels.slo_outputs import BurnAlertFired, BurnAlertResolved, SloOutput
from workers.kernels.slo_windows import SloWindows

TOLERANCE = 1e-9
"""Relative tolerance of burn-rate comparisons (see `workers.kernels.slo`)."""
KINDS = tuple(Notify)


class BurnAlerts:
    """The firing tiers and open alerts of one SLO. Mutable, updated in place."""

    __slots__ = (
        "_budget",
        "_firing",
        "_kind_tiers",
        "_min_events",
        "_open",
        "_plan",
        "_tiers",
        "_windows_ms",
        "hot",
    )

    def __init__(
        self,
        tiers: tuple[BurnRateTier, ...],
        windows_ms: tuple[int, ...],
        error_budget: float,
        min_events: int,
    ) -> None:
        """`windows_ms`: the tracker's windows, which hold every tier's long and short one."""
        self._tiers = tiers
        self._windows_ms = windows_ms
        self._budget = error_budget
        self._min_events = min_events
        self._plan = tuple(
            (
                windows_ms.index(tier.long_window_ms),
                windows_ms.index(tier.short_window_ms),
                tier.factor * error_budget * (1 - TOLERANCE),
            )
            for tier in tiers
        )
        """Per tier: (long window index, short window index, the bad fraction that burns)."""
        self._kind_tiers = tuple(
            tuple(
                sorted(
                    (i for i, tier in enumerate(tiers) if tier.notify is kind),
                    key=lambda i: -tiers[i].factor,
                )
            )
            for kind in KINDS
        )
        """Per notify kind: its tiers' indexes, highest factor first."""
        self._firing = [False] * len(tiers)
        self._open: list[tuple[int, int] | None] = [None] * len(KINDS)
        """Per notify kind: (tier index it fired with, fired at) while open."""
        self.hot = False
        """At the last check some tier fired, or burnt on both windows short of min_events:
        only then can a count without bad events change a decision."""

    # --- deciding ---

    def check(self, windows: SloWindows) -> bool:
        """Which tiers fire now; True when that changed (then `notify`)."""
        rings = windows.rings
        pending_good = windows.pending_good
        pending_valid = windows.pending_valid
        firing = self._firing
        minimum = self._min_events
        hot = False
        changed = False
        for i, (long_i, short_i, threshold) in enumerate(self._plan):
            short = rings[short_i]
            short_valid = short.valid_sum + pending_valid
            short_bad = short_valid - short.good_sum - pending_good
            short_burns = short_valid > 0 and short_bad >= threshold * short_valid
            if firing[i]:
                if short_burns:
                    hot = True
                else:
                    firing[i] = False
                    changed = True
            elif short_burns:
                long = rings[long_i]
                long_valid = long.valid_sum + pending_valid
                long_bad = long_valid - long.good_sum - pending_good
                if long_valid > 0 and long_bad >= threshold * long_valid:
                    hot = True
                    if long_valid >= minimum and short_valid >= minimum:
                        firing[i] = True
                        changed = True
        self.hot = hot
        return changed

    def notify(
        self, now_ms: int, windows: SloWindows, budget_remaining: float, out: list[SloOutput]
    ) -> None:
        """Open or resolve each notify kind's alert after the firing tiers changed."""
        firing = self._firing
        for k, indexes in enumerate(self._kind_tiers):
            opened = self._open[k]
            if opened is None:
                for i in indexes:  # highest factor first
                    if firing[i]:
                        tier = self._tiers[i]
                        self._open[k] = (i, now_ms)
                        long_burn, short_burn = self._tier_burns(windows, tier)
                        out.append(
                            BurnAlertFired(tier, now_ms, long_burn, short_burn, budget_remaining)
                        )
                        break
            elif not any(firing[i] for i in indexes):
                tier = self._tiers[opened[0]]
                self._open[k] = None
                long_burn, short_burn = self._tier_burns(windows, tier)
                out.append(
                    BurnAlertResolved(
                        tier, now_ms, opened[1], long_burn, short_burn, budget_remaining
                    )
                )

    # --- reading ---

    def burn(self, windows: SloWindows, index: int) -> float:
        """(bad / valid) / (1 - target) over window `index`; 0.0 when it is empty."""
        valid = windows.valid(index)
        if not valid:
            return 0.0
        return (valid - windows.good(index)) / valid / self._budget

    def burn_rates(self, windows: SloWindows) -> dict[str, float]:
        """Every tier's short and long window, by name."""
        rates: dict[str, float] = {}
        for tier in self._tiers:
            for window in (tier.short_window_ms, tier.long_window_ms):
                rates[window_name(window)] = self.burn(windows, self._windows_ms.index(window))
        return rates

    def firing(self) -> tuple[str, ...]:
        return tuple(t.name for t, on in zip(self._tiers, self._firing, strict=True) if on)

    def alerting(self) -> dict[str, str]:
        """The open alerts: notify kind -> the tier it fired with."""
        return {
            kind.value: self._tiers[opened[0]].name
            for kind, opened in zip(KINDS, self._open, strict=True)
            if opened is not None
        }

    def _tier_burns(self, windows: SloWindows, tier: BurnRateTier) -> tuple[float, float]:
        index = self._windows_ms.index
        return (
            self.burn(windows, index(tier.long_window_ms)),
            self.burn(windows, index(tier.short_window_ms)),
        )
