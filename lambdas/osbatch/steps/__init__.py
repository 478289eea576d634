"""The workflow's steps, one module per state (docs/architecture.md names each): each takes its input
and a few typed ports (steps/support/ports.py, dal.JobStore) and returns its output."""
