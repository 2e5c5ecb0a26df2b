"""Which receivers an alert goes to, routed on its labels the way Alertmanager routes (pure).

A routes file (`guardstream alerts forward --routes FILE`) names the receivers and an ordered
list of routes. An alert is matched against the routes in order; the first route that matches
takes it, and the search goes on only if that route says `continue: true`. A route with no
matchers matches everything (a catch-all goes last). Matchers: `match` (label equals value)
and `match_re` (label fully matches a regular expression); all must hold. The labels are the
ones Alertmanager would get (`alertname`, `severity`, the identifying labels) plus `kind` (the
alert kind, the same as `alertname`).

    receivers:
      pager:     {type: pagerduty, routing_key_env: PAGERDUTY_ROUTING_KEY}
      ops-chat:  {type: slack, url_env: SLACK_WEBHOOK_URL}
      archive:   {type: webhook, url: "http://audit-hook.internal/alerts"}
    routes:
      - {match: {severity: page}, receiver: pager, continue: true}
      - {match_re: {kind: "budget_.*"}, receiver: ops-chat}
      - {receiver: archive}

Secrets (a Slack webhook URL, a PagerDuty routing key) come from the environment variable a
receiver names (`url_env`, `routing_key_env`), never from the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, StringConstraints, ValidationError, model_validator

from schemas.alerts import Alert
from workers.alerting.postable import split_labels
from workers.errors import ConfigError
from workers.policies.fields import StrictModel
from workers.policies.files import read_policy_file

MAX_RECEIVERS = 50
MAX_ROUTES = 200
MAX_MATCHERS = 20
MAX_PATTERN_CHARS = 500

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ReceiverType(StrEnum):
    WEBHOOK = "webhook"
    """Alertmanager's webhook payload (`version` 4): what most alert tooling reads."""
    SLACK = "slack"
    """A Slack incoming webhook (also Mattermost and other Slack-compatible hooks)."""
    PAGERDUTY = "pagerduty"
    """PagerDuty Events API v2: trigger on firing, resolve on resolution, keyed by the
    alert's fingerprint (`dedup_key`)."""


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class ReceiverSpec(StrictModel):
    type: ReceiverType
    url: Annotated[str, StringConstraints(max_length=2000)] | None = None
    url_env: Name | None = None
    routing_key_env: Name | None = None
    """PagerDuty only: the variable holding the integration's routing key."""

    @model_validator(mode="after")
    def _where_to(self) -> Self:
        if self.url and self.url_env:
            raise ValueError("give url or url_env, not both")
        if self.type is not ReceiverType.PAGERDUTY and not (self.url or self.url_env):
            raise ValueError(f"a {self.type.value} receiver needs url or url_env")
        if self.type is ReceiverType.PAGERDUTY and not self.routing_key_env:
            raise ValueError("a pagerduty receiver needs routing_key_env")
        return self

    def resolved_url(self, environ: Mapping[str, str]) -> str:
        if self.url_env:
            return _from_environment(environ, self.url_env)
        if self.url:
            return self.url
        return PAGERDUTY_EVENTS_URL

    def routing_key(self, environ: Mapping[str, str]) -> str:
        return _from_environment(environ, self.routing_key_env or "")


class RouteSpec(StrictModel):
    receiver: Name
    match: dict[Name, Annotated[str, StringConstraints(max_length=500)]] = Field(
        default_factory=dict, max_length=MAX_MATCHERS
    )
    match_re: dict[Name, Annotated[str, StringConstraints(max_length=MAX_PATTERN_CHARS)]] = Field(
        default_factory=dict, max_length=MAX_MATCHERS
    )
    continue_: bool = Field(default=False, alias="continue")

    @model_validator(mode="after")
    def _patterns_compile(self) -> Self:
        for label, pattern in self.match_re.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label}: {exc}") from None
        return self


class RoutesSpec(StrictModel):
    receivers: dict[Name, ReceiverSpec] = Field(min_length=1, max_length=MAX_RECEIVERS)
    routes: list[RouteSpec] = Field(min_length=1, max_length=MAX_ROUTES)

    @model_validator(mode="after")
    def _receivers_exist(self) -> Self:
        for n, route in enumerate(self.routes):
            if route.receiver not in self.receivers:
                raise ValueError(f"routes.{n}.receiver: no receiver named {route.receiver!r}")
        return self


class Router:
    """The routes of a routes file, compiled."""

    def __init__(self, spec: RoutesSpec) -> None:
        self.spec = spec
        self._routes = [
            (
                route.receiver,
                dict(route.match),
                {label: re.compile(pattern) for label, pattern in route.match_re.items()},
                route.continue_,
            )
            for route in spec.routes
        ]

    def receivers_for(self, alert: Alert) -> list[str]:
        """The receivers `alert` goes to, in route order, each once."""
        labels, _ = split_labels(alert)
        labels["kind"] = alert.kind
        chosen: list[str] = []
        for receiver, equal, patterns, go_on in self._routes:
            if all(labels.get(k) == v for k, v in equal.items()) and all(
                p.fullmatch(labels.get(k, "")) for k, p in patterns.items()
            ):
                if receiver not in chosen:
                    chosen.append(receiver)
                if not go_on:
                    break
        return chosen


def load_routes(path: Path) -> RoutesSpec:
    """A routes file, validated; ConfigError naming the file and the field."""
    data = read_policy_file(path)
    try:
        return RoutesSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def _from_environment(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set (a receiver needs it)")
    return value
