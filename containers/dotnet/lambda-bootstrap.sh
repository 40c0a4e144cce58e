#!/bin/sh
# Starts the samples' runtime loop; the handler is a [LambdaHandler] name from CMD,
# which the entrypoint puts in _HANDLER.
exec "${DOTNET_ROOT:-/var/lang/bin}/dotnet" exec \
  --runtimeconfig "${LAMBDA_TASK_ROOT:-/var/task}/function.runtimeconfig.json" \
  "${LAMBDA_TASK_ROOT:-/var/task}/function.dll" "$_HANDLER"
