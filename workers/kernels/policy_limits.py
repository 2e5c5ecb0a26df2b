"""Named caps on policy values (DESIGN §10: policy files are bounded too).

A policy author can ask for windows of ten years or counts of a billion; every kernel allocates
per key (per breaker key, budget key, SLO group) what its policy says, so without caps one line
of YAML costs gigabytes per key, or a loop per event. Each cap bounds memory or CPU per key and
is far above what the seeds and the Workbook use; values past a cap are refused when the policy
loads (the kernels' config values check them, so files and published documents alike), never
clamped. Each name carries its unit. The README lists them all.

Memory per key, derived from these caps (measured with tracemalloc: a breaker's state is ~0.4 KB
plus its window; the engine's bookkeeping adds ~1 KB):
- a breaker window holds at most MAX_WINDOW_SLOTS slots: a count window 1 byte a call (3.6 KB),
  a time window 8 bytes a bucket (28.8 KB, 16-bit counters), plus 8 bytes a slot when
  `cost_threshold_usd` sums cost: at most ~60 KB per breaker key whatever the policy says;
- half-open trial calls are a count window too (MAX_WINDOW_SLOTS);
- each trip condition adds two counters or one quantile sketch (MAX_TRIP_CONDITIONS of them);
- budget windows have a fixed number of slices (rolling periods and rate limits 60, rapid
  consumption one a minute up to MAX_RAPID_WINDOW_MS), the anomaly baseline one integer per
  window (MAX_BASELINE_WINDOWS);
- an SLO keeps 60 buckets per distinct window (two per tier, MAX_TIERS, plus the period):
  at most (2 x 16 + 1) x 60 x 16 bytes = ~31 KB per SLO group.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from schemas.limits import MAX_DURATION_MS, MAX_MONEY_USD, MAX_TOKENS

SECOND_MS: Final = 1000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS

# --- any policy ---

MAX_POLICY_DURATION_MS: Final = 366 * DAY_MS
"""Any duration a policy states (waits, grace, periods, windows), unless a tighter cap below
applies: a year and a day holds an annual period; event time plus it stays a valid date."""
MAX_POLICY_USD: Final = MAX_MONEY_USD
"""Any amount of money in a policy (limits, thresholds, prices, opening spend): $1e9, the cap on
one amount anywhere (schemas.limits). Limits count in whole nano-dollars (9 decimal places)."""
MAX_POLICY_TOKENS: Final = MAX_TOKENS
"""Any token count or per-window request/token rate: 1e12 (schemas.limits)."""
MAX_COUNT: Final = 1_000_000
"""Minimum numbers of calls or events: a million calls before a rate means anything is a typo."""
MAX_STREAK: Final = 1_000
"""Consecutive intervals, windows or operations (violations, breaches, normal operations)."""
MAX_FACTOR: Final = 1_000.0
"""Multipliers and burn-rate / anomaly factors (the Workbook's largest is 14.4)."""
MAX_LATENCY_MS: Final = float(MAX_DURATION_MS)
"""Latency thresholds (slow calls, p95 trip conditions, latency SLIs and objectives): a week,
the longest duration an event may report (schemas.limits.MAX_DURATION_MS)."""

# --- circuit breakers ---

MAX_WINDOW_SLOTS: Final = 3_600
"""Calls of a count window, buckets of a time window (window / time_bucket_s), and permitted
half-open calls: alpha-solver's schema allows a monitoring window of 3600 s in 1-s buckets."""
MAX_BREAKER_WINDOW_S: Final = 86_400
"""A breaker's time window: a day (in buckets of at least 24 s); longer views are SLOs' job."""
MAX_CONSECUTIVE: Final = 100
"""failure_threshold, success_threshold, consecutive_success_threshold: alpha-solver's schema."""
MAX_WAIT_MS: Final = DAY_MS
"""wait_in_open_ms, max_wait_in_open_ms, max_wait_in_half_open_ms, allowed_lateness_ms, and a
trip condition's window: a day (alpha-solver's schema caps timeout_seconds at an hour)."""
MAX_TRIP_CONDITIONS: Final = 8
"""Trip conditions per breaker (each keeps counters or a sketch per key)."""
FALLBACK_ACTIONS: Final = ("use_cache", "use_default", "return_error", "use_fallback_vendor")
"""alpha-solver's schema's enum for fallback_action (carried to gateways in breaker-state)."""

# --- budgets ---

MAX_GRACE_MS: Final = 31 * DAY_MS
"""How long a closed period still takes late spend."""
MAX_RATE_WINDOW_MS: Final = DAY_MS
"""A rate limit's window (60 slices, so a multiple of 60 ms)."""
MAX_RAPID_WINDOW_MS: Final = DAY_MS
"""Rapid consumption's window (one-minute slices: at most 1,440 integers per key)."""
MAX_ANOMALY_WINDOW_MS: Final = 31 * DAY_MS
"""A spend-anomaly detection window (tumbling, one integer per window of the baseline)."""
MAX_BASELINE_WINDOWS: Final = 1_000
"""Windows in an anomaly baseline (8 bytes each per key)."""
MIN_CHECK_INTERVAL_MS: Final = SECOND_MS
"""A tripwire checks every interval in turn while tripped: not more often than every second."""
MAX_THRESHOLDS: Final = 64
"""Thresholds per budget (each is tracked per key and period)."""
MAX_BURST_ALLOWANCE: Final = Decimal(100)
"""burst_allowance: a multiplier of the limit and of rate limits."""
MAX_TRIPWIRE_PCT: Final = Decimal(1_000_000)
"""Tripwire breach / recovery thresholds, in percent of the plan."""

# --- SLOs ---

MAX_TIERS: Final = 16
"""Burn-rate tiers per SLO (two windows of 60 buckets each per SLO group)."""
MAX_OBJECTIVE_WINDOW_MS: Final = 31 * DAY_MS
"""A window objective's window (12 sketches or 60 buckets, whatever its length)."""
MAX_TIMESLICE_MS: Final = DAY_MS
"""A timeslice (budgeting by timeslices)."""

# --- dependency graph (dependency_graph.yaml) and vendor registry (vendors.yaml) ---

MAX_DEPENDENCY_NODES: Final = 10_000
"""Nodes a dependency graph declares (tools, vendors, modules; external dependencies are
bounded by the references below). A fact change re-evaluates at most every node once, so this
bounds the cascade's work per change, with the references, to O(nodes + references)."""
MAX_DEPENDENCY_REFERENCES: Final = 100
"""References in one node's `depends_on`, and apart from them in its `required_by`."""
MAX_DEPENDENCY_DEPTH: Final = 100
"""The largest `circular_detection.max_depth` a graph may ask for (the seed's default is 10):
links in the longest dependency chain, so the longest cause a decision carries."""
MAX_VENDORS_PER_GROUP: Final = 1_000
"""Vendor names in one group of the vendor registry."""
MAX_RETENTION_DAYS: Final = 36_500
"""A data class's `retention_days` (a hundred years; the seed's longest is 2,190)."""
