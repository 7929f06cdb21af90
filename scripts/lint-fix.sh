#!/usr/bin/env bash
# Apply ruff's automatic fixes and its formatting to the whole workspace, then
# show what is left for a person: the lint findings ruff cannot fix and mypy's
# errors. Run it from a clean checkout and commit its changes on their own
# (formatting only), so that review can skip them. The configuration is in the
# root pyproject.toml; `.ci/run` checks the same things without changing code.
#
# Never narrow `ruff check --fix` with `--select`: RUF100 would then take every
# other rule for disabled and drop the `# noqa` comments that rule needs.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
uv run ruff check --fix . || status=1
uv run ruff format . || status=1
# the fixes may have split or joined lines: one more pass reports what stays
uv run ruff check . || status=1
uv run mypy || status=1
exit "$status"
