"""Alert delivery: guardstream's alerts topic -> Alertmanager (and other receivers), at least
once, never backwards, never in the worker's way (`guardstream alerts forward`)."""
