#!/bin/sh
# The contract of the official AWS Lambda base images' entrypoint (research/rie.md
# §4), for the offline base: the one argument is the handler. With
# AWS_LAMBDA_RUNTIME_API set, an outside Runtime API is in charge (enirace's
# emulator) and the bootstrap runs directly; without it, the image's RIE runs it.
if [ "$#" -ne 1 ]; then
  echo "lambda-entrypoint: expected exactly one argument, the handler name" >&2
  exit 142
fi
export _HANDLER="$1"
if [ -n "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  exec /var/runtime/bootstrap
fi
exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
