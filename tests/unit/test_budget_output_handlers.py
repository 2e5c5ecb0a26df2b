"""Every output a budget ledger can emit has a way to become decisions: a new output type
without a handler would be dropped silently by `BudgetEngine._decision`."""

from __future__ import annotations

from typing import get_args

from workers.budgets.engine import _OUTPUT_HANDLERS
from workers.kernels.budget_outputs import BudgetOutput


def test_every_budget_output_type_has_a_handler() -> None:
    assert set(_OUTPUT_HANDLERS) == set(get_args(BudgetOutput))
