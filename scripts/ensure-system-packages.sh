#!/usr/bin/env bash
# Install the Debian packages that Estafette's tests and tools need, skipping
# the ones already installed. A run with nothing to install only queries the
# dpkg database, so it needs no network and no apt-get update.
#
# Usage: scripts/ensure-system-packages.sh [--browser] [--postgres] [--documents] [--search]
#   --postgres   PostgreSQL server and client from the Debian release
#                (Debian 12: PostgreSQL 15, contrib modules such as unaccent included)
#   --browser    Chromium, its WebDriver and the Liberation fonts, for browser tests
#   --documents  poppler-utils (pdftotext, pdfinfo, pdftoppm), Tesseract with its French model and
#                LibreOffice Writer without its GUI, for checking generated PDFs, reading scanned
#                letters and converting .docx replies and acknowledgements to PDF
#   --search     a Java 17 runtime and Maven, to build and run the OpenSearch test node
set -euo pipefail

usage() {
    echo "Usage: $0 [--browser] [--postgres] [--documents] [--search]" >&2
}

requested=()
for option in "$@"; do
    case "$option" in
        --postgres) requested+=(postgresql postgresql-contrib) ;;
        --browser) requested+=(chromium chromium-driver fonts-liberation) ;;
        --documents) requested+=(poppler-utils tesseract-ocr tesseract-ocr-fra libreoffice-writer-nogui fonts-dejavu-core fonts-liberation2) ;;
        --search) requested+=(openjdk-17-jdk-headless maven) ;;
        -h|--help) usage; exit 0 ;;
        *) echo "ensure-system-packages: unknown option '$option'" >&2; usage; exit 2 ;;
    esac
done

if [ "${#requested[@]}" -eq 0 ]; then
    echo "ensure-system-packages: no package group requested, nothing to do"
    exit 0
fi

# `dpkg -s` also succeeds for a package that was removed but not purged, so
# check the status line for "install ok installed".
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for package in "${requested[@]}"; do
    if is_installed "$package"; then
        echo "ensure-system-packages: $package already installed"
    else
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "ensure-system-packages: installing ${missing[*]} requires root, and sudo is not available." >&2
    echo "Run this script as root, or install the packages yourself: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "ensure-system-packages: running apt-get update"
"${as_root[@]}" apt-get update -qq

echo "ensure-system-packages: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"

echo "ensure-system-packages: installed ${missing[*]}"
