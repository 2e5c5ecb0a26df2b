"""File pipelines (`replay --input`'s) running one kernel."""

from __future__ import annotations

from workers.breakers.spec import BREAKERS
from workers.budgets.spec import BUDGETS
from workers.policies.breakers import BreakerPolicy, default_breaker_policy
from workers.policies.budgets import BudgetPolicy, default_budget_policy
from workers.policies.policy_set import PolicySet
from workers.replay.pipeline import PipelineReplay


def breakers_only(policy: BreakerPolicy) -> PipelineReplay:
    return PipelineReplay.for_file(PolicySet(policy, default_budget_policy()), kernels=[BREAKERS])


def budgets_only(policy: BudgetPolicy) -> PipelineReplay:
    return PipelineReplay.for_file(PolicySet(default_breaker_policy(), policy), kernels=[BUDGETS])
