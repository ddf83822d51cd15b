#!/bin/sh
# Download the default real data set: Python packages from Debian, as .deb files (real
# repository dumps: an ar archive holding data.tar.xz). Files already there are reused.
#   tools/fetch-data.sh [DIR]     (default: $CM_DATA, else /var/cache/codemill/debs)
set -eu
DIR=${1:-${CM_DATA:-/var/cache/codemill/debs}}
PKGS="python3-sklearn python3-sklearn-lib python-sklearn-doc python3-pandas python3-pandas-lib
python3-matplotlib python3-scipy python3-seaborn python3-statsmodels python3-numpy
python3-django python3-twisted"
mkdir -p "$DIR"
cd "$DIR"
missing=""
for p in $PKGS; do
    ls "${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "fetch-data: downloading$missing into $DIR" >&2
    # apt-get download needs the package lists; refresh them once if a download fails
    if ! apt-get download $missing >/dev/null 2>&1; then
        apt-get update -qq >&2
        apt-get download $missing >&2
    fi
fi
ls "$DIR"/*.deb
