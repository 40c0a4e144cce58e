"""Judging a trial: pure checks over one history (fault windows, failures and recovery,
error classes, packet evidence) composed into a verdict; re-runs on a stored history."""
