"""Degradation strategies (issue 5): when an objective stays breached, degrade; when none of
the triggers' objectives is breached any more, restore (the config is
`slo_targets_config.DegradationStrategy`).

Inputs are breach-state changes of objectives (`observe(objective_id, breached, ts_ms)`: a
window objective at WARNING or worse, a burn-rate SLO with a tier firing) and clock events
(`advance`). Ids that no trigger names are ignored. A repeated state (breached twice) changes
nothing: an objective is breached from the first `breached=True` until a `breached=False`.

- A trigger is due at `breached_since + breach_duration_ms` of its objective's current breach.
  The strategy degrades at the first due time reached by event time: the `Degraded` output is
  stamped with that due time (exactly, whether reached by `advance` or by `observe`, in big
  steps or small), names the trigger's objective and when its breach began, and carries
  {parameter: value} of every action (a later action wins on a repeated parameter). Ties go to
  the trigger listed first. A breach that ends before its due time resets that trigger: a
  new breach starts the timer again. At event time exactly the due time, the breach counts as
  lasting its duration, so an observation that ends it at that time still degrades first.
- Degraded once per episode: while active nothing repeats. The strategy is restored when an
  observation leaves none of the triggers' objectives breached: `Restored` at that time,
  with the parameters to undo and when it degraded.
- Event time never goes backwards: an observation older than the newest time seen counts at
  the newest time.

Pure: no I/O, no clock, no randomness; memory is one entry per trigger objective.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.kernels.slo_targets_config import DegradationStrategy


@dataclass(frozen=True, slots=True)
class _StrategyChange:
    """What both outputs say: which strategy, when, and the parameters of its target."""

    strategy_id: str
    ts_ms: int
    target: str
    parameters: dict[str, str]
    """Degraded: the parameters to set; Restored: those the degradation set, to undo."""


@dataclass(frozen=True, slots=True)
class Degraded(_StrategyChange):
    objective_id: str
    """The trigger's objective whose breach lasted its duration."""
    breached_since_ms: int


@dataclass(frozen=True, slots=True)
class Restored(_StrategyChange):
    degraded_at_ms: int


DegradationOutput = Degraded | Restored


class DegradationTracker:
    """One degradation strategy; see the module docstring."""

    __slots__ = ("_breached_since", "_degraded_at_ms", "_now_ms", "_parameters", "strategy")

    def __init__(self, strategy: DegradationStrategy) -> None:
        self.strategy = strategy
        self._parameters = {action.parameter: action.value for action in strategy.actions}
        self._breached_since: dict[str, int | None] = {
            trigger.objective_id: None for trigger in strategy.triggers
        }
        self._degraded_at_ms: int | None = None
        self._now_ms: int | None = None

    @property
    def active(self) -> bool:
        return self._degraded_at_ms is not None

    @property
    def degraded_at_ms(self) -> int | None:
        return self._degraded_at_ms

    def breached_since(self, objective_id: str) -> int | None:
        """When the objective's current breach began (None: not breached or not a trigger)."""
        return self._breached_since.get(objective_id)

    def observe(self, objective_id: str, breached: bool, ts_ms: int) -> list[DegradationOutput]:
        """Objective `objective_id` is (`breached`) or is no longer breached from `ts_ms`."""
        if objective_id not in self._breached_since:
            return []
        outputs = self.advance(ts_ms)
        now = self._now_ms
        assert now is not None
        since = self._breached_since[objective_id]
        if breached:
            if since is None:
                self._breached_since[objective_id] = now
                outputs += self.advance(now)  # a zero duration is due at once
            return outputs
        if since is None:
            return outputs
        self._breached_since[objective_id] = None
        degraded_at = self._degraded_at_ms
        if degraded_at is not None and all(s is None for s in self._breached_since.values()):
            self._degraded_at_ms = None
            outputs.append(Restored(*self._change_at(now), degraded_at_ms=degraded_at))
        return outputs

    def advance(self, ts_ms: int) -> list[DegradationOutput]:
        """Event time reached `ts_ms`: degrade if a trigger fell due by then."""
        if self._now_ms is None or ts_ms > self._now_ms:
            self._now_ms = ts_ms
        if self._degraded_at_ms is not None:
            return []
        now = self._now_ms
        first: tuple[int, str, int] | None = None
        for trigger in self.strategy.triggers:
            since = self._breached_since[trigger.objective_id]
            if since is None:
                continue
            due = since + trigger.breach_duration_ms
            if due <= now and (first is None or due < first[0]):
                first = (due, trigger.objective_id, since)
        if first is None:
            return []
        due, objective_id, since = first
        self._degraded_at_ms = due
        return [Degraded(*self._change_at(due), objective_id=objective_id, breached_since_ms=since)]

    def _change_at(self, ts_ms: int) -> tuple[str, int, str, dict[str, str]]:
        """The `_StrategyChange` fields of an output at `ts_ms`, in order."""
        return self.strategy.strategy_id, ts_ms, self.strategy.target, dict(self._parameters)
