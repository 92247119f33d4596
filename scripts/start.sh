#!/bin/sh
# `npm start`: a monolith for home use on the embedded defaults. First run: writes
# data/dendrite.yaml and data/matrix_key.pem. Then serves http://localhost:8008.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data="${DENDRITE_DATA:-$root/data}"
mkdir -p "$data"
if [ ! -f "$data/dendrite.yaml" ]; then
  "$root/bin/generate-config" -dir "$data" -server "${DENDRITE_SERVER_NAME:-localhost:8008}" > "$data/dendrite.yaml.tmp"
  mv "$data/dendrite.yaml.tmp" "$data/dendrite.yaml"
  echo "Wrote $data/dendrite.yaml" >&2
fi
if [ ! -f "$data/matrix_key.pem" ]; then
  "$root/bin/generate-keys" --private-key "$data/matrix_key.pem"
fi
exec "$root/bin/dendrite" --config "$data/dendrite.yaml" --http-bind-address "${DENDRITE_HTTP_BIND:-localhost:8008}" "$@"
