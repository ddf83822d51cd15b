#!/bin/sh
# SPDX-License-Identifier: MIT
# Download the real data set: Python packages from Debian, as .deb files (real repository
# dumps: an ar archive holding data.tar.xz). Files already there are reused.
#   tools/fetch-data.sh [--bench] [DIR]
# default set (make demo, ~94 MB of .debs): data-science packages plus two with little or no
# data-science code (django, twisted) so that the filter has something to reject;
# --bench adds more packages (~200 MB of Python in all) for the benchmarks, into its own DIR.
set -eu
PKGS="python3-sklearn python3-sklearn-lib python-sklearn-doc python3-pandas python3-pandas-lib
python3-matplotlib python3-scipy python3-seaborn python3-statsmodels python3-numpy
python3-django python3-twisted"
default_dir=${CM_DATA:-/var/cache/codemill/debs}
if [ "${1:-}" = --bench ]; then
    shift
    PKGS="$PKGS python3-sympy python3-astropy python3-networkx python3-dask python3-xarray
python3-numba python3-sqlalchemy python3-plotly python3-nltk python3-skimage"
    default_dir=${CM_BENCH_DATA:-/var/cache/codemill/debs-bench}
fi
DIR=${1:-$default_dir}
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
for p in $PKGS; do ls "$DIR/${p}"_*.deb; done
