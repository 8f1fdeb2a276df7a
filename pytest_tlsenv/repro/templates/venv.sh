VENV="$WORK/venv"
# shellcheck disable=SC2034  # for runs that name {venv}
VENV_PY="$VENV/bin/python"
if ! python3 -m venv --without-pip "$VENV"; then
  echo "tlsenv: python3 -m venv failed (Debian: apt install python3-venv)" >&2; exit 2
fi
