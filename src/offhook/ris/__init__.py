"""Real-time information: what a running node is doing now (registrations, calls, counters) and the local admin endpoint that serves it."""
