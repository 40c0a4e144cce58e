"""What runs in the sandbox: launch specs per runtime, the .NET build, the runtime's
containment (user, /tmp, cgroup) and its output."""
