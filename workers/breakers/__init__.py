"""The circuit-breaker shell: routes events to breaker kernels, turns transitions into
decisions (state, alerts, audit). Pure like the kernel; the Faust sink does the I/O."""
