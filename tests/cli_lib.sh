# The shared part of the command-line test scripts (cli_errors.sh, data_cli.sh, ckpt_cli.sh, mpi_train.sh,
# tokenizer_oracle.sh), sourced by each: the argument check, a work folder removed on exit, counting
# failures, and the strict check of a bad-input case (exit status 1, nothing on stdout, one stderr line).
# Every script stays runnable as CTest runs it: bash tests/DIR/SCRIPT.sh ARGS...

set -u  # every script wants an unset variable to be an error

# cli_args MIN MAX USAGE "$@": unless the script got MIN to MAX arguments, "usage: SCRIPT USAGE" on stderr
# and exit status 2.
cli_args() {
  local min=$1 max=$2 usage=$3
  shift 3
  if [[ $# -lt $min || $# -gt $max ]]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
}

# cli_workdir NAME: $work is a new folder under $TMPDIR, removed on exit (kept when NSA_KEEP_WORK is set,
# to look at a failure).
cli_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1_XXXXXX")
  [[ -n ${NSA_KEEP_WORK:-} ]] || trap 'rm -rf "$work"' EXIT
}

failures=0

# fail NAME MESSAGE...: prints "FAIL [NAME]: MESSAGE" and counts one failure.
fail() {
  echo "FAIL [$1]: ${*:2}"
  failures=$((failures + 1))
}

# cli_finish SUCCESS_LINE: exit status 1 with the count when anything failed, else SUCCESS_LINE.
cli_finish() {
  if [[ $failures -ne 0 ]]; then
    echo "$failures failure(s)"
    exit 1
  fi
  echo "$1"
}

# cli_synth NSA_DATA VOCAB: a small synthetic corpus in $work/data (20k train and 5k val tokens, 10k-token
# shards), or exit status 1.
cli_synth() {
  if ! "$1" synth --out "$work/data" --train-tokens 20000 --val-tokens 5000 --shard-tokens 10000 \
    --vocab "$2" >"$work/synth.log" 2>&1; then
    echo "FAIL: nsa-data synth: $(cat "$work/synth.log")"
    exit 1
  fi
}

# The program expect_error runs, and the start of each of its error lines ("nsa-ckpt: error: ").
cli_program=
cli_error_prefix=

# expect_error NAME FRAGMENT... -- ARGS...: $cli_program ARGS must exit with status 1, print nothing on
# stdout and exactly one line on stderr, starting with $cli_error_prefix and holding every FRAGMENT.
expect_error() {
  local name=$1
  shift
  local fragments=()
  while [[ $1 != -- ]]; do
    fragments+=("$1")
    shift
  done
  shift
  "$cli_program" "$@" >"$work/stdout" 2>"$work/stderr"
  local status=$?
  local message lines fragment
  message=$(cat "$work/stderr")
  echo "[$name] status $status: $message"
  [[ $status -eq 1 ]] || fail "$name" "exit status $status, expected 1"
  lines=$(wc -l <"$work/stderr")
  [[ $lines -eq 1 ]] || fail "$name" "$lines lines on stderr, expected 1"
  [[ -s $work/stdout ]] && fail "$name" "unexpected stdout: $(head -c 300 "$work/stdout")"
  [[ $message == "$cli_error_prefix"* ]] || fail "$name" "stderr does not start with '$cli_error_prefix'"
  for fragment in "${fragments[@]}"; do
    [[ $message == *"$fragment"* ]] || fail "$name" "'$fragment' not in the message"
  done
}
