"""OpenSLO v1 `kind: SLO` documents as burn-rate SLOs.

OpenSLO names metrics in some monitoring system; guardstream's convention is a metric source
of `type: guardstream` whose `spec` says which events count and what a good one is:

    indicator:
      spec:
        ratioMetric:
          counter: true
          good:
            metricSource:
              type: guardstream
              spec: {sli: latency, latency_threshold_ms: 500}
          total:
            metricSource: {type: guardstream, spec: {selector: {vendor: openai}}}

The two specs are merged (`sli`, `latency_threshold_ms`, `latency_source`, `selector`,
`group_by`, `excluded_error_types`; a key in both must agree); `bad` instead of `good` counts
the complement of the same SLI. Each entry of `spec.objectives` is one SLO with id
`metadata.name` (one objective) or `metadata.name.<objective name or displayName>`.
`indicatorRef`, `thresholdMetric` and `RatioTimeslices` are refused with an error;
`alertPolicies` are loaded and reported as unsupported (guardstream alerts with its burn-rate
tiers). A file may hold several documents (YAML `---`); it travels as
{"openslo_documents": [...]}.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from schemas.state import BudgetPeriod
from workers.kernels.slo_config import BudgetingMethod, Sli, SliKind, SloConfig
from workers.policies.fields import extra_keys
from workers.policies.files import Problems, dotted
from workers.policies.parsing import NOT_EVALUATED, build, note_unknown_keys, validate_entry
from workers.policies.slo_models import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    OsDocument,
    OsGuardSource,
    OsMetric,
    OsObjective,
    OsSloSpec,
    parse_duration,
)
from workers.policies.slo_shapes import OPENSLO_DOCUMENTS, Built, calendar_spec, check_unique

API_VERSION = "openslo/v1"
SOURCE_TYPE = "guardstream"
_OS_DURATION = re.compile(r"([1-9][0-9]*)([mhdwMQY])")
_ROLLING_UNITS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
_CALENDAR_UNITS = {
    "1d": BudgetPeriod.DAILY,
    "1w": BudgetPeriod.WEEKLY,
    "1M": BudgetPeriod.MONTHLY,
    "1Q": BudgetPeriod.QUARTERLY,
    "1Y": BudgetPeriod.ANNUAL,
}
_BUDGETING = {"Occurrences": BudgetingMethod.OCCURRENCES, "Timeslices": BudgetingMethod.TIMESLICES}
_SOURCE_KEYS = (
    "sli",
    "latency_threshold_ms",
    "latency_source",
    "selector",
    "group_by",
    "excluded_error_types",
)


def parse_openslo_documents(
    spec: Mapping[str, Any], base: Mapping[str, Any], problems: Problems
) -> Built:
    """OpenSLO v1 `kind: SLO` documents: one, or several under OPENSLO_DOCUMENTS."""
    built = Built()
    if OPENSLO_DOCUMENTS in spec:
        docs = spec[OPENSLO_DOCUMENTS]
        if len(spec) > 1 or not isinstance(docs, list):
            problems.error(OPENSLO_DOCUMENTS, "must be the only key, a list of documents")
            return built
        for i, doc in enumerate(docs):
            _document(doc, (OPENSLO_DOCUMENTS, i), base, built, problems)
    else:
        _document(spec, (), base, built, problems)
    check_unique(built, problems, slo_path="metadata.name")
    return built


def _path(prefix: Sequence[str | int], *rest: str | int) -> str:
    return dotted((*prefix, *rest)) or "(top level)"


def _slo_spec(
    raw: Any, prefix: tuple[str | int, ...], problems: Problems
) -> tuple[str, OsSloSpec] | None:
    """The name and the spec of an OpenSLO v1 `kind: SLO` document; None once a problem with
    it is recorded."""
    if not isinstance(raw, dict):
        problems.error(_path(prefix), "must be an OpenSLO document (a mapping)", raw)
        return None
    doc = validate_entry(OsDocument, raw, problems, *prefix)
    if doc is None:
        return None
    if doc.apiVersion != API_VERSION:
        problems.error(_path(prefix, "apiVersion"), f"must be {API_VERSION}", doc.apiVersion)
        return None
    if doc.kind != "SLO":
        problems.error(
            _path(prefix, "kind"),
            "must be SLO (inline the SLI in spec.indicator; other kinds are not loaded)",
            doc.kind,
        )
        return None
    spec = validate_entry(OsSloSpec, doc.spec, problems, *prefix, "spec")
    return None if spec is None else (doc.metadata.name, spec)


def _note_unused(
    spec: OsSloSpec, prefix: tuple[str | int, ...], built: Built, problems: Problems
) -> None:
    """What an SLO spec states that guardstream does not evaluate."""
    note_unknown_keys(problems, spec, _path(prefix, "spec"))
    if spec.service is not None:
        problems.note(
            _path(prefix, "spec", "service"),
            f"{spec.service!r} is a label; the metric source's selector decides which events count",
        )
    if spec.alertPolicies:
        built.unsupported_entry(
            _path(prefix, "spec", "alertPolicies"),
            f"{len(spec.alertPolicies)} alert policy(ies): guardstream alerts with its "
            "multiwindow burn-rate tiers (the SRE Workbook's by default); not evaluated",
        )


def _budgeting(
    spec: OsSloSpec, prefix: tuple[str | int, ...], problems: Problems
) -> BudgetingMethod | None:
    budgeting = _BUDGETING.get(spec.budgetingMethod)
    if budgeting is None:
        problems.error(
            _path(prefix, "spec", "budgetingMethod"),
            "must be Occurrences or Timeslices (RatioTimeslices is not supported)",
            spec.budgetingMethod,
        )
    return budgeting


def _document(
    raw: Any,
    prefix: tuple[str | int, ...],
    base: Mapping[str, Any],
    built: Built,
    problems: Problems,
) -> None:
    found = _slo_spec(raw, prefix, problems)
    if found is None:
        return
    name, spec = found
    _note_unused(spec, prefix, built, problems)
    before = len(problems.errors)
    sli_fields = _indicator(spec, prefix, problems)
    period = _time_window(spec, prefix, base, problems)
    budgeting = _budgeting(spec, prefix, problems)
    if not spec.objectives:
        problems.error(_path(prefix, "spec", "objectives"), "must list at least one", [])
    if len(problems.errors) > before or sli_fields is None or period is None or budgeting is None:
        return
    sli = build(Sli, problems, _path(prefix, "spec", "indicator"), **sli_fields.pop("sli"))
    if sli is None:
        return
    for i, objective in enumerate(spec.objectives):
        path = _path(prefix, "spec", "objectives", i)
        slo_id = _objective_id(name, objective, len(spec.objectives), path, problems)
        fields = _objective_fields(objective, budgeting, path, problems)
        if slo_id is None or fields is None:
            continue
        built.add(
            build(
                SloConfig,
                problems,
                path,
                slo_id=slo_id,
                sli=sli,
                period_ms=period[0],
                calendar=period[1],
                description=spec.description or objective.displayName or "",
                budgeting=budgeting,
                min_events=base["min_events"],
                **sli_fields,
                **fields,
            )
        )


def _indicator(
    spec: OsSloSpec, prefix: tuple[str | int, ...], problems: Problems
) -> dict[str, Any] | None:
    path = _path(prefix, "spec", "indicator")
    if spec.indicatorRef is not None:
        problems.error(
            _path(prefix, "spec", "indicatorRef"),
            "is not supported: write the SLI inline as spec.indicator",
            spec.indicatorRef,
        )
        return None
    if spec.indicator is None:
        problems.error(path, "is required")
        return None
    ind = spec.indicator.spec
    if ind.ratioMetric is None:
        what = "thresholdMetric is" if ind.thresholdMetric is not None else "it is missing"
        problems.error(f"{path}.spec.ratioMetric", f"is required ({what} not supported)")
        return None
    ratio = ind.ratioMetric
    if (ratio.good is None) == (ratio.bad is None):
        problems.error(f"{path}.spec.ratioMetric", "needs exactly one of good and bad")
        return None
    counted = "good" if ratio.good is not None else "bad"
    part = ratio.good or ratio.bad
    assert part is not None
    merged: dict[str, Any] = {}
    for side, metric in ((counted, part), ("total", ratio.total)):
        source = _source(metric, f"{path}.spec.ratioMetric.{side}.metricSource", problems)
        if source is None:
            return None
        for key in source.model_fields_set:
            value = getattr(source, key)
            if key in merged and merged[key] != value:
                problems.error(
                    f"{path}.spec.ratioMetric.{side}.metricSource.spec.{key}",
                    f"must agree with the {counted} source's {merged[key]!r}",
                    value,
                )
                return None
            merged[key] = value
    kind = merged.get("sli")
    if kind is None:
        problems.error(f"{path}.spec.ratioMetric.{counted}.metricSource.spec.sli", "is required")
        return None
    sli: dict[str, Any] = {"kind": SliKind(kind)}
    for key in ("latency_threshold_ms", "latency_source", "excluded_error_types"):
        if key in merged:
            sli[key] = merged[key]
    fields: dict[str, Any] = {"sli": sli}
    if "selector" in merged:
        fields["selector"] = MappingProxyType(dict(merged["selector"]))
    if "group_by" in merged:
        fields["group_by"] = merged["group_by"]
    return fields


def _source(metric: OsMetric, path: str, problems: Problems) -> OsGuardSource | None:
    source = metric.metricSource
    if source.type != SOURCE_TYPE:
        problems.error(
            f"{path}.type",
            f"must be {SOURCE_TYPE} (spec: {{{', '.join(_SOURCE_KEYS)}}})",
            source.type,
        )
        return None
    return validate_entry(OsGuardSource, source.spec, problems, *path.split("."), "spec")


def _time_window(
    spec: OsSloSpec, prefix: tuple[str | int, ...], base: Mapping[str, Any], problems: Problems
) -> tuple[int | None, Any] | None:
    if len(spec.timeWindow) != 1:
        problems.error(
            _path(prefix, "spec", "timeWindow"),
            "must hold exactly one window",
            len(spec.timeWindow),
        )
        return None
    window = spec.timeWindow[0]
    path = _path(prefix, "spec", "timeWindow", 0)
    match = _OS_DURATION.fullmatch(window.duration)
    if match is None:
        problems.error(f"{path}.duration", "must be a number and m|h|d|w|M|Q|Y", window.duration)
        return None
    if window.isRolling:
        unit = _ROLLING_UNITS.get(match.group(2))
        if unit is None:
            problems.error(
                f"{path}.duration",
                "a rolling window is in m, h, d or w (months and years vary in length)",
                window.duration,
            )
            return None
        return int(match.group(1)) * unit, None
    if window.calendar is None:
        problems.error(f"{path}.calendar", "is required unless isRolling is true")
        return None
    kind = _CALENDAR_UNITS.get(window.duration)
    if kind is None:
        problems.error(
            f"{path}.duration",
            "a calendar window is one of " + ", ".join(_CALENDAR_UNITS),
            window.duration,
        )
        return None
    tz = window.calendar.get("timeZone", base["tz"])
    if "startTime" in window.calendar:
        problems.note(
            f"{path}.calendar.startTime",
            f"periods are aligned to the calendar ({kind.value}) in {tz}; startTime not used",
        )
    found = calendar_spec(kind.value, tz, None, f"{path}.calendar", problems)
    return None if found is None else (None, found)


def _objective_id(
    name: str, objective: OsObjective, count: int, path: str, problems: Problems
) -> str | None:
    if count == 1:
        return name
    label = objective.name or objective.displayName
    if label is None:
        problems.error(f"{path}.name", "is required when an SLO has several objectives")
        return None
    return f"{name}.{label.strip().lower().replace(' ', '-')}"


def _objective_fields(
    objective: OsObjective, budgeting: BudgetingMethod, path: str, problems: Problems
) -> dict[str, Any] | None:
    extra = extra_keys(objective)
    if "targetPercent" in extra:
        problems.error(
            f"{path}.targetPercent",
            "is not supported: write target as a fraction (99.9 % is 0.999)",
            extra["targetPercent"],
        )
        return None
    for key in extra:
        problems.note(f"{path}.{key}", NOT_EVALUATED)
    if objective.target is None:
        problems.error(f"{path}.target", "is required")
        return None
    fields: dict[str, Any] = {"target": objective.target}
    if budgeting is BudgetingMethod.TIMESLICES:
        if objective.timeSliceTarget is None or objective.timeSliceWindow is None:
            problems.error(path, "Timeslices needs timeSliceTarget and timeSliceWindow")
            return None
        slice_ms = parse_duration(objective.timeSliceWindow)
        if slice_ms is None:
            problems.error(
                f"{path}.timeSliceWindow", "must be a duration (1m, 30s)", objective.timeSliceWindow
            )
            return None
        fields["timeslice_target"] = objective.timeSliceTarget
        fields["timeslice_ms"] = slice_ms
    return fields
