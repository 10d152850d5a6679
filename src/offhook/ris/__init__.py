"""Real-time information: what a running node is doing now.

Registrations, calls and counters, and the local admin endpoint that serves them.
"""
