
# As root the client must not bypass file permissions (what a non-root user meets).
DROP=
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null 2>&1; then
    DROP="setpriv --inh-caps=-all --ambient-caps=-all --no-new-privs --bounding-set=-all\
$([ -f "$HERE/nsplan.py" ] && echo ,+sys_admin,+chown,+setpcap)"  # nsplan.py drops them
  else
    echo "tlsenv: warning: root without setpriv: permission faults will not bite" >&2
  fi
fi
TO=
if command -v timeout >/dev/null 2>&1; then TO="timeout -k 2 $TIMEOUT"; fi
