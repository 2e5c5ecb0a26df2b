"""The live-state projection (issue 13, DESIGN §9): the compacted state topics, kept in Redis
for gateways to read before they call a vendor.

Kafka stays the source of truth; Redis holds a copy a gateway can read in one round trip.
`updates` turns state records into hash updates (pure), `store` applies them atomically and
never backwards (a Lua script), `projector` is the process that reads the topics and retries
through Redis outages, rebuilding the copy whenever Redis lost it.
"""
