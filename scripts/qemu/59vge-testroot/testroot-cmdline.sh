#!/bin/sh
# shellcheck disable=SC2154 # root and NEWROOT are set by dracut's init
# cmdline hook: claim root=vge-testroot (parse-root-opts.sh has set $root already).
if [ "$root" = vge-testroot ]; then
    # shellcheck disable=SC2034 # read by dracut's init
    rootok=1
fi
