#!/bin/sh
# The container's entrypoint: a new config volume gets the default configuration.yaml, then
# the command (`evhub run --config /config`) replaces this shell and gets SIGTERM itself.
set -eu
config_dir=${EVHUB_CONFIG_DIR:-/config}
default=${EVHUB_DEFAULT_CONFIG:-/usr/share/evhub/configuration.yaml}
if [ ! -e "$config_dir/configuration.yaml" ]; then
    if ! cp "$default" "$config_dir/configuration.yaml" 2>/dev/null; then
        echo "evhub: cannot write $config_dir: make it writable by uid $(id -u)" \
            "(chown $(id -u):$(id -g) on the host directory)" >&2
        exit 1
    fi
    echo "evhub: new config dir, wrote $config_dir/configuration.yaml" >&2
fi
exec "$@"
