"""The Runtime API emulator: the RIE-compatible state machine, its bounded HTTP server,
the wire formats and RIE log lines, and the stand-alone `enirace-rie` drop-in."""
