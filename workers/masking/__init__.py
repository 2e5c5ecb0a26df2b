"""PII/PHI masking (DESIGN §10): the classification policy's detectors applied to whatever
leaves the worker -- audit payloads, alerts, dead letters and log lines. Below both the ingest
stage and the audit trail, which use it."""
