# Shared by redis-start.sh and sentinel-start.sh (sourced from the same ConfigMap).

# Refuses to start while a named password is empty or still the Secret's placeholder.
require_passwords() {
  for name in "$@"; do
    eval "value=\${$name:-}"
    if [ -z "$value" ] || [ "$value" = replace-before-deploying ]; then
      echo "refusing to start: set the passwords of the Secret roomcast-redis (deploy/k8s/README.md)" >&2
      exit 1
    fi
  done
}

# A config file with its ${NAME} placeholders filled from the environment (and its comments dropped).
render() {
  awk '/^[[:space:]]*(#|$)/ { next }
  {
    out = ""
    while (match($0, /\$\{[A-Z0-9_]+\}/)) {
      out = out substr($0, 1, RSTART - 1) ENVIRON[substr($0, RSTART + 2, RLENGTH - 3)]
      $0 = substr($0, RSTART + RLENGTH)
    }
    print out $0
  }' "$1"
}
