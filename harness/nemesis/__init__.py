"""Faults and their firing: the Fault protocol (apply, verify, revert), the catalogue of
ENI, DNS and traffic faults, and the timer that fires a schedule at lifecycle events."""
