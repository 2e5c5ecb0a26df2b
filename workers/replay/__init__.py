"""Offline replay: the kernels over recorded input, without Kafka (DESIGN §8)."""
