
# run @N@ of @TOTAL@: @NOTE@
RUN="$WORK/run-@N@"
mkdir -p "$RUN/home" "$RUN/tmp" "$RUN/cache" "$RUN/config" "$RUN/data"
: > "$RUN/wgetrc"
ob=$(count "$WORK/server/origin.log"); lb=$(count "$WORK/server/leaked.log")
hb=$(count "$WORK/server/handshakes.log")
start=$(date +%s)
# shellcheck disable=SC2016  # the command as recorded, not expanded
echo @ECHO@
# shellcheck disable=SC2086  # DROP and TO are lists of words
(cd "$RUN/home" && exec $DROP $TO env -i PATH="$CLIENT_PATH" \
    @CALLER@ \
@ASSIGNS@
    @COMMAND@) </dev/null >"$RUN/stdout" 2>"$RUN/stderr"
verdict "$RUN" "$?" "$start" "$ob" "$lb" "$hb"
sed 's/^/  | /' "$RUN/stderr" | tail -n 20
echo "verdict: $V - $R (expected: $EXPECTED; recorded: @RECORDED@)"
