#!/bin/sh
# SPDX-License-Identifier: MIT
#
#   with-model.sh LIBDIR PROGRAM [ARG...]
#
# Runs PROGRAM with the libdext.so in LIBDIR (the one carrying the IOKit
# transport over the model of IOKitLib) found first.  meson puts the
# build's own libdext first in LD_LIBRARY_PATH, so this goes in front.
libdir=$1
shift
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "$@"
