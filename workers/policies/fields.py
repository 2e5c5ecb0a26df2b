"""Building blocks of the policy-shape models (`*_models`): strict and open model bases,
field validators and the field types more than one kind of policy uses.

Every validator raises `rule_error`, whose text is the rule the value breaks; `Problems`
(files.py) adds the file, the path and the value. Optional fields are `... | None = None`
with a plain validator: an explicit `null` is an error, an omitted key leaves the layer below
(file defaults, mode defaults, kernel) in charge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, PlainValidator
from pydantic_core import PydanticCustomError

from workers.kernels.policy_limits import MAX_POLICY_USD

MAX_NANO_PLACES: Final = 9
"""Decimal places of a money limit: budgets count in whole nano-dollars."""
MAX_POLICY_INT: Final = 2**53
"""Any integer in a policy: JSON-safe (every JSON reader keeps it exact); fields have tighter
caps where a kernel allocates or loops by them (workers.kernels.policy_limits)."""
MAX_AMOUNT_CHARS: Final = 64
"""An amount written as a string: more characters than any amount within the caps needs."""


# --- field validators (pydantic PlainValidator functions) ---
# Plain validators see the raw value, so bools are not integers and 5.0 is not 5: a policy
# that says `failure_threshold: true` is a typo, not 1.


def rule_error(rule: str) -> PydanticCustomError:
    """A field's rule, broken: one error type for every validator, so `Problems.validation`
    words them all the same way (`<path>: <rule>, not <value>`)."""
    return PydanticCustomError("guardstream", rule)


def int_in(minimum: int, maximum: int) -> Any:
    rule = f"must be an integer in [{minimum}, {maximum:,}]"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise rule_error(rule)
        return value

    return check


def int_at_least(minimum: int) -> Any:
    """An integer >= `minimum`, and at most MAX_POLICY_INT (every policy integer's bound)."""
    rule = f"must be an integer >= {minimum}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise rule_error(rule)
        if value > MAX_POLICY_INT:
            raise rule_error("must be an integer <= 2**53")
        return value

    return check


def number_in(low: float, high: float | None, *, low_open: bool = False) -> Any:
    left = "(" if low_open else "["
    rule = f"must be a number in {left}{low}, {high}]" if high is not None else ""
    rule = rule or (f"must be a number > {low}" if low_open else f"must be a number >= {low}")

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise rule_error(rule)
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high) or not math.isfinite(value):
            raise rule_error(rule)
        return float(value)

    return check


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise rule_error("must be a number")
    return float(value)


def money_in(maximum: Decimal, *, places: int | None = None, zero_ok: bool = False) -> Any:
    """A positive (or, `zero_ok`, non-negative) amount, number or decimal string, up to
    `maximum` USD, with at most `places` decimal places when given (limits count in whole
    nano-dollars)."""
    exact = "" if places is None else f", at most {places} decimal places"
    kind = "an amount >= 0" if zero_ok else "a positive amount"
    rule = f"must be {kind} <= {maximum:,} USD (number or decimal string{exact})"

    def check(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise rule_error(rule)
        if isinstance(value, str) and len(value) > MAX_AMOUNT_CHARS:
            raise rule_error(rule)
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise rule_error(rule) from None
        if not amount.is_finite() or amount < 0 or amount > maximum:
            raise rule_error(rule)
        if amount == 0:
            if zero_ok:
                return amount
            raise rule_error(rule)
        exponent = amount.normalize().as_tuple().exponent
        if places is not None and isinstance(exponent, int) and -exponent > places:
            raise rule_error(rule)
        return amount

    return check


positive_decimal = money_in(MAX_POLICY_USD)
"""Any policy amount of money (thresholds, prices, multipliers written as decimals)."""
money_limit = money_in(MAX_POLICY_USD, places=MAX_NANO_PLACES)
"""An amount a budget counts against: whole nano-dollars, up to MAX_POLICY_USD."""


def one_of(choices: Sequence[str]) -> Any:
    rule = "must be one of " + "|".join(choices)

    def check(value: Any) -> str:
        if value not in choices:
            raise rule_error(rule)
        return str(value)

    return check


def strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise rule_error("must be true or false")
    return value


def string_set(value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise rule_error("must be a list of strings")
    # YAML reads `[500, 503]` as integers; the error types on events are strings.
    return frozenset(str(v) for v in value)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise rule_error("must be a non-empty string")
    return value


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def weekday(value: Any) -> int:
    # A name reads better in a policy; 0-6 (Monday first, date.weekday()) is accepted too.
    if isinstance(value, str) and value.lower() in WEEKDAYS:
        return WEEKDAYS.index(value.lower())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6:
        return value
    raise rule_error("must be a weekday name (monday...sunday) or 0 (Monday) - 6 (Sunday)")


def strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise rule_error("must be a list of non-empty strings")
    return tuple(value)


def scalar_text(value: Any) -> str:
    # Downgrade parameters and degradation values travel as strings; a YAML 0.5 or true is
    # kept as written.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise rule_error("must be a string, number or boolean")


# --- field types every kind uses ---

OptNonNegInt = Annotated[int | None, PlainValidator(int_at_least(0))]
OptPosInt = Annotated[int | None, PlainValidator(int_at_least(1))]
OptPosNumber = Annotated[float | None, PlainValidator(number_in(0, None, low_open=True))]
OptBool = Annotated[bool | None, PlainValidator(strict_bool)]
OptMoney = Annotated[Decimal | None, PlainValidator(positive_decimal)]
"""Any amount of money a policy states (thresholds, prices, multipliers written as decimals)."""
Text = Annotated[str, PlainValidator(text)]
OptText = Annotated[str | None, PlainValidator(text)]
ScalarText = Annotated[str, PlainValidator(scalar_text)]
OptWeekday = Annotated[int | None, PlainValidator(weekday)]
Strings = Annotated[tuple[str, ...], PlainValidator(strings)]
"""A list of non-empty strings, in order."""
OptStrings = Annotated[tuple[str, ...] | None, PlainValidator(strings)]
StringSet = Annotated[frozenset[str], PlainValidator(string_set)]
"""Strings or integers (YAML reads `[500, 503]` as integers), as a set of strings."""
OptStringSet = Annotated[frozenset[str] | None, PlainValidator(string_set)]


# --- model bases ---


class StrictModel(BaseModel):
    """guardstream's own shapes: an unknown key is an error (a typo must not silently fall
    back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenModel(BaseModel):
    """The seeds' shapes: unknown keys are kept (those files carry sections for other
    systems) and the converters note each one (`extra_keys`)."""

    model_config = ConfigDict(extra="allow", frozen=True)


def extra_keys(model: BaseModel) -> dict[str, Any]:
    """Keys a seed model accepted without knowing them (empty for strict models)."""
    return dict(model.model_extra or {})
