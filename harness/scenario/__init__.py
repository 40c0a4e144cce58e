"""Scenarios: the pydantic model, bounded YAML input, durations and triggers, fault
parameters, the address pool, and the one override language (--set, sweep axes, plugin)."""
