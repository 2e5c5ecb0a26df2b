"""The seed files in configs/seeds stay byte-identical to the seeds the project was given
(../shared/seed-configs), checked by their SHA-256 without depending on that folder: loaders
and their tests read these copies as the formats' reference examples."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.policy_files import CONFIGS

SEEDS = CONFIGS / "seeds"
SEED_SHA256 = {
    "alpha-solver/audit_trail.json": (
        "53d61ac2e7f448a707e9b5f8e23ef579dc21f392e42296211b8b070ff9926de4"
    ),
    "alpha-solver/budget_controls.yaml": (
        "27e94eebc4000c4990de02f27cfebe4e302b56ca653b0cec4dc08a388434492b"
    ),
    "alpha-solver/data_classification.yaml": (
        "0ff4f4ada710ffad6255bada65fe40fd7f00809d542e219330af0adc1dc750d8"
    ),
    "alpha-solver/sla_contracts.yaml": (
        "387260d92b3dfb1417d15796876377c0c4dca72722dd3a3038fea2e6c3296f7f"
    ),
    "resontinex/energy_governance.yaml": (
        "bd80479fc414d6770d34707616e43f23e356ca4f76ff619ee49be945e127bdc9"
    ),
    "resontinex/slo.yaml": "58d17d95410be57c191a4a48fc651a52d353f5b0fb51f165f7bb315b674c7a20",
}


@pytest.mark.parametrize(("seed", "sha256"), SEED_SHA256.items())
def test_seed_copy_is_byte_identical(seed: str, sha256: str) -> None:
    assert hashlib.sha256((SEEDS / seed).read_bytes()).hexdigest() == sha256
