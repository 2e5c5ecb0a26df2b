"""The budget shell: routes events to budget ledgers, decisions out (pure); I/O in the sink."""
