#!/bin/sh
# The sandbox's nginx image entrypoint (like the official image's): render the configuration
# for this pod's IP, then run the command (CMD: nginx -g 'daemon off;').
set -e
sed "s/@BIND_ADDRESS@/${BIND_ADDRESS:-0.0.0.0}/g" /docker-entrypoint.d/nginx.conf > /tmp/nginx.conf
if [ "$1" = nginx ]; then
    shift
    exec nginx -c /tmp/nginx.conf -e stderr "$@"
fi
exec "$@"
