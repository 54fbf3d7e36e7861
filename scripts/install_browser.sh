#!/usr/bin/env bash
# The browser the chat-page tests drive: Debian's chromium (+ CJK fonts), driven by Playwright
# (a test extra) with executable_path=/usr/bin/chromium. Playwright's own browser download is
# never used. Needs root (or sudo) the first time; a no-op when chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: /usr/bin/chromium is missing and this user cannot install it; run as root:" >&2
    echo "  apt-get update && apt-get install -y chromium fonts-noto-cjk" >&2
    exit 1
  fi
fi
echo "Installing chromium and CJK fonts (apt-get) ..." >&2
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk >/dev/null
