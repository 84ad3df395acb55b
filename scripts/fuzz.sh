#!/usr/bin/env bash
# Long fuzzing run (`make fuzz`): the same tests as CI's short version, with many more examples.
#   FUZZ_EXAMPLES      examples per API operation and generation mode (default 150: ~30,000 requests
#                      over three identities — admin with a token, collector with a token and with a
#                      session, plus stateful sequences — about half an hour on 2 cores;
#                      FUZZ_EXAMPLES=40 gives ~8,300 requests in ~10 minutes)
#   FUZZ_PROPERTIES    examples per Hypothesis property and per import-file variation (default 300)
# The runs are derandomized: the same numbers give the same inputs, so a failure reproduces.
# Each API test prints "N requests; statuses {...}" and every distinct failure with a curl line.
set -euo pipefail
cd "$(dirname "$0")/.."

export FUZZ_EXAMPLES="${FUZZ_EXAMPLES:-150}"
export FUZZ_PROPERTIES="${FUZZ_PROPERTIES:-300}"
PYTHON="${PYTHON:-.venv/bin/python}"
# Thousands of expected 400/403/404s are logged as warnings; a 500 is logged as an error and stays.
export LOG_LEVEL="${LOG_LEVEL:-ERROR}"

echo "fuzz: ${FUZZ_EXAMPLES} examples per API operation and mode, ${FUZZ_PROPERTIES} per property"
exec "$PYTHON" -m pytest -q -s -p no:cacheprovider --reuse-db \
    tests/fuzz/test_api_schemathesis.py \
    tests/fuzz/test_properties.py \
    tests/fuzz/test_template_budget.py \
    tests/fuzz/test_import_corpus.py \
    tests/cobranza/test_api_fuzz_regressions.py \
    "$@"
