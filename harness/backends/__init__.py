"""Backends start the function's processes: `process` (a child in the sandbox
namespace) now, `docker` later."""
