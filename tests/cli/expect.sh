#!/usr/bin/env bash
# expect.sh CODE REGEX COMMAND...: runs COMMAND, and passes when it exits with CODE and its
# output (stdout and stderr together) matches the extended regular expression REGEX. CTest's
# PASS_REGULAR_EXPRESSION alone ignores the exit code, and a refusal must also exit right.
set -u
code=$1 regex=$2
shift 2
output=$("$@" 2>&1)
rc=$?
printf '%s\n' "$output" | tail -n 20
if [[ $rc != "$code" ]]; then
  echo "expect.sh: exit code $rc, expected $code" >&2
  exit 1
fi
# The output as one line, so that REGEX can span lines (".*" between two messages).
if ! tr '\n' ' ' <<<"$output" | grep -Eq -- "$regex"; then
  echo "expect.sh: the output does not match: $regex" >&2
  exit 1
fi
