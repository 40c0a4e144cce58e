"""Race-window sweeps: a grid of scenario parameters x repeats, with control trials,
run in parallel worker processes, streamed to results.jsonl, resumable, shardable."""
