"""The trial's single history: the schema of event kinds, the recorder, and queries over a
stored history.jsonl."""
