#!/usr/bin/env bash
# Remakes docs/report.png: the screenshot the browser test takes of results/gpu/report.html
# opened in headless Chromium (1280x1000, the top of the page), made smaller with pngquant when
# it is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
FUZE_REQUIRE_BROWSER=1 FUZE_REPORT_SCREENSHOTS="$tmp" go test -count=1 -run 'TestReportInBrowser/gpu-results' ./internal/htmlreport
if command -v pngquant >/dev/null 2>&1; then
  pngquant --quality 70-90 --strip --force --output docs/report.png "$tmp/gpu-results.png"
else
  cp "$tmp/gpu-results.png" docs/report.png
fi
ls -l docs/report.png
