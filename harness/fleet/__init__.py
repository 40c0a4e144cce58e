"""Fleets: many execution environments of one function behind an event source
(synchronous invokes, or a real SQS queue polled as Lambda's event source mapping
polls it), with an account of every message."""
