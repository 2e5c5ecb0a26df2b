"""Breaker policy (DESIGN §5, §6): which BreakerConfig governs each vendor/tool.

`load_breaker_policy(path, mode)` reads guardstream's `configs/breakers.yaml` shape or either
seed shape (alpha-solver's circuit_breakers.json, RESONTINEX's circuit_breakers.yaml), see
`breaker_shapes`. The result is immutable and carries the PolicyDocument that
`policy apply` publishes; a worker rebuilds the same policy from it with `from_document`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from schemas.policy import PolicyDocument, PolicyKind
from workers.kernels.breaker_config import BreakerConfig
from workers.policies.breaker_models import KeyMode, Rule
from workers.policies.breaker_shapes import parse
from workers.policies.files import (
    LoadedPolicy,
    builtin_policy_document,
    load_policy_document,
    require_kind,
)
from workers.policies.parsing import parse_policy
from workers.settings import Mode

# Looked for in a policy directory, in this order (the second is the seeds' name).
FILE_STEMS = ("breakers", "circuit_breakers")

# Defaults per runtime mode for what a policy file may omit; below them are the kernel's own
# (Resilience4j's). Production keeps Resilience4j's: 100 calls before a rate means anything,
# 60 s open. Development trips after 10 calls in a 50-call window and retries after 30 s, so a
# simulator run shows a breaker open and recover within a minute; staging sits in between.
# Precedence (DESIGN §5): environment > policy file > these.
MODE_DEFAULTS: Mapping[Mode, Mapping[str, Any]] = MappingProxyType(
    {
        Mode.DEVELOPMENT: MappingProxyType(
            {"minimum_number_of_calls": 10, "wait_in_open_ms": 30_000, "sliding_window_size": 50}
        ),
        Mode.STAGING: MappingProxyType(
            {"minimum_number_of_calls": 20, "wait_in_open_ms": 60_000, "sliding_window_size": 100}
        ),
        Mode.PRODUCTION: MappingProxyType(
            {"minimum_number_of_calls": 100, "wait_in_open_ms": 60_000, "sliding_window_size": 100}
        ),
    }
)

# (vendor, tool) pairs remembered by `resolve`; a fleet has far fewer, and the bound keeps a
# flood of made-up tool names from growing memory.
RESOLVE_CACHE_SIZE = 4096


@dataclass(frozen=True, eq=False)
class BreakerPolicy(LoadedPolicy):
    """A validated breaker policy; `resolve` is on the hot path (one call per event)."""

    breakers: Mapping[str, BreakerConfig]
    default_breaker_id: str
    rules: tuple[Rule, ...] = ()
    key: KeyMode = KeyMode.VENDOR_TOOL
    disabled: frozenset[str] = frozenset()
    """Breakers the file switches off (`enabled: false`): the shell holds them DISABLED."""
    _resolve_id: Callable[[str, str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A bound lru_cache per policy: a new policy version starts with an empty cache.
        object.__setattr__(
            self, "_resolve_id", functools.lru_cache(maxsize=RESOLVE_CACHE_SIZE)(self._match)
        )

    def _match(self, vendor: str, tool: str) -> str:
        for rule in self.rules:  # first match wins
            if rule.matches(vendor, tool):
                return rule.breaker
        return self.default_breaker_id

    def resolve_id(self, vendor: str, tool: str) -> str:
        return self._resolve_id(vendor, tool)

    def resolve(self, vendor: str, tool: str) -> BreakerConfig:
        return self.breakers[self._resolve_id(vendor, tool)]

    def enabled(self, breaker_id: str) -> bool:
        return breaker_id not in self.disabled

    def key_for(self, vendor: str, tool: str) -> str:
        if self.key is KeyMode.VENDOR:
            return vendor
        if self.key is KeyMode.TOOL:
            return tool
        return f"{vendor}/{tool}"

    @classmethod
    def from_document(cls, doc: PolicyDocument, mode: Mode = Mode.DEVELOPMENT) -> BreakerPolicy:
        """The policy a published document describes (same parser as the file)."""
        require_kind(doc, PolicyKind.BREAKERS)
        return _from_spec(doc.spec, mode, doc)


def load_breaker_policy(path: Path, mode: Mode = Mode.DEVELOPMENT) -> BreakerPolicy:
    """Read, validate and resolve a breaker policy file (or the one in directory `path`)."""
    spec, doc = load_policy_document(path, FILE_STEMS, PolicyKind.BREAKERS)
    return _from_spec(spec, mode, doc)


def default_breaker_policy(mode: Mode = Mode.DEVELOPMENT) -> BreakerPolicy:
    """No policy directory given: one breaker, `default`, with the mode's defaults."""
    spec, doc = builtin_policy_document(PolicyKind.BREAKERS, {"breakers": {"default": {}}})
    return _from_spec(spec, mode, doc)


def _from_spec(spec: Mapping[str, Any], mode: Mode, doc: PolicyDocument) -> BreakerPolicy:
    parsed, loaded = parse_policy(doc, spec, MODE_DEFAULTS[mode], parse)
    return BreakerPolicy(
        **loaded,
        breakers=MappingProxyType(parsed.breakers),
        default_breaker_id=parsed.default,
        rules=parsed.rules,
        key=parsed.key,
        disabled=parsed.disabled,
    )
