"""The decision kernels guardstream runs, in the order each batch visits them (the worker's
shell and every replay run this list; adding a kernel is adding its spec here)."""

from __future__ import annotations

from typing import Any

from workers.breakers.spec import BREAKERS
from workers.budgets.spec import BUDGETS
from workers.shell.spec import KernelSpec
from workers.slos.spec import SLOS

KERNELS: tuple[KernelSpec[Any], ...] = (BREAKERS, BUDGETS, SLOS)
