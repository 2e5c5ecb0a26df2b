"""Development and test infrastructure, outside the production package (``workers``).

Real Kafka (KRaft, from Maven jars) and redis-server as child processes on loopback ports,
for the test fixtures, the benchmarks and ``make demo``; ``python -m devstack fetch`` caches
the broker jars, ``python -m devstack up`` runs the stack until Ctrl-C. Nothing under
``schemas``, ``topics`` or ``workers`` imports it (tests/unit/test_layering.py).
"""
