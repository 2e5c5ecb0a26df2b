"""The audit trail: hash-chained records of every governance decision (DESIGN §8)."""
