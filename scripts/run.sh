#!/usr/bin/env bash
# Install, build (or update) the index of corpus/, then serve on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ANONYMIZED_TELEMETRY=False
exec tongcheng-qa serve --corpus corpus/ "$@"
