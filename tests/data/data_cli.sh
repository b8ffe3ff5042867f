#!/usr/bin/env bash
# The nsa-data command line without downloads: inspect on good and corrupt shards (exit status 1 and one
# stderr line per bad shard, naming it), encode / decode / documents, and one-line errors naming the file
# or option at fault for bad tokenizer files, inputs and options.
#
# usage: data_cli.sh NSA_DATA
source "$(dirname "${BASH_SOURCE[0]}")/../cli_lib.sh"  # also sets -u
cli_args 1 1 "NSA_DATA" "$@"
nsa_data=$1
cli_workdir nsa_data_cli
cli_program=$nsa_data
cli_error_prefix="nsa-data: "

# ---- fixtures ----
printf 'Hello world.\nA second line of text, with some words in it.\n' >"$work/a.txt"
printf '{"text": "first document"}\n{"body": "second", "text": "caf\\u00e9 \\ud83d\\ude00"}\n' >"$work/d.jsonl"
"$nsa_data" tokenize --quiet --val-fraction 0 --out "$work/bytes" "$work/a.txt" "$work/d.jsonl" >"$work/tok.log" 2>&1 ||
  fail "tokenize" "$(cat "$work/tok.log")"
good=$work/bytes/train_000.bin
mkdir -p "$work/bad"
head -c 1100 "$good" >"$work/bad/truncated.bin"
{ printf 'NOPE'; tail -c +5 "$good"; } >"$work/bad/magic.bin"
: >"$work/bad/empty.bin"

# ---- inspect ----
"$nsa_data" inspect --tokenizer bytes "$good" >"$work/stdout" 2>"$work/stderr"
status=$?
cat "$work/stdout"
[[ $status -eq 0 ]] || fail "inspect good" "exit status $status: $(cat "$work/stderr")"
grep -q "version 1 (uint16 tokens), 86 tokens, min 10, max 256 (all < vocab 257), 3 end-of-text tokens" "$work/stdout" ||
  fail "inspect good" "unexpected header line"
grep -q 'text:  "<|endoftext|>Hello world.\\nA second line' "$work/stdout" || fail "inspect good" "no decoded sample"

"$nsa_data" inspect "$good" "$work/bad/truncated.bin" "$work/bad/magic.bin" "$work/bad/empty.bin" \
  >"$work/stdout" 2>"$work/stderr"
status=$?
echo "[inspect bad] status $status"
cat "$work/stderr"
[[ $status -eq 1 ]] || fail "inspect bad" "exit status $status, expected 1"
[[ $(wc -l <"$work/stderr") -eq 3 ]] || fail "inspect bad" "expected one stderr line per bad shard"
grep -q "^nsa-data: $work/bad/truncated.bin: truncated shard" "$work/stderr" || fail "inspect bad" "truncated not named"
grep -q "^nsa-data: $work/bad/magic.bin: not a shard: magic number" "$work/stderr" || fail "inspect bad" "magic not named"
grep -q "^nsa-data: $work/bad/empty.bin: empty file" "$work/stderr" || fail "inspect bad" "empty not named"
grep -q "^$good: magic 20240520" "$work/stdout" || fail "inspect bad" "the good shard was not inspected"
expect_error "inspect token outside vocab" "$good" "token 256 at position 0 is outside the vocabulary (vocab_size 200)" -- \
  inspect --vocab 200 "$good"

# ---- encode, decode, documents ----
ids=$("$nsa_data" encode --text "hi!")
[[ $ids == "104 105 33" ]] || fail "encode" "got '$ids'"
text=$("$nsa_data" decode 104 105 33)
[[ $text == "hi!" ]] || fail "decode" "got '$text'"
"$nsa_data" documents "$work/d.jsonl" "$work/a.txt" >"$work/docs.jsonl" 2>"$work/stderr" || fail "documents" "$(cat "$work/stderr")"
[[ $(wc -l <"$work/docs.jsonl") -eq 3 ]] || fail "documents" "expected 3 lines"
grep -q '^{"text": "caf'$'\xc3\xa9'' '$'\xf0\x9f\x98\x80''"}$' "$work/docs.jsonl" || fail "documents" "escapes not decoded"

# ---- errors: one line, naming the file or option ----
printf '{"model": {"type": "BPE", "vocab": {}, "merges": []},\n "pre_tokenizer": [1, 2}\n' >"$work/broken.json"
printf '{"model": {"type": "Unigram", "vocab": []}, "pre_tokenizer": null}\n' >"$work/unigram.json"
mkdir -p "$work/empty_dir"
expect_error "tokenize missing input" "$work/none.txt" "cannot open" -- tokenize --out "$work/o" "$work/none.txt"
expect_error "tokenize malformed jsonl" "$work/a.txt.jsonl:1: malformed JSON" -- \
  tokenize --out "$work/o" "$(cp "$work/a.txt" "$work/a.txt.jsonl"; echo "$work/a.txt.jsonl")"
expect_error "tokenize missing field" "$work/d.jsonl:1: no field 'body'" -- tokenize --out "$work/o" --field body "$work/d.jsonl"
expect_error "tokenizer missing" "$work/nope.json" "No such file" -- tokenize --tokenizer "$work/nope.json" --out "$work/o" "$work/a.txt"
expect_error "tokenizer malformed" "$work/broken.json" "line 2, column 24" -- \
  tokenize --tokenizer "$work/broken.json" --out "$work/o" "$work/a.txt"
expect_error "tokenizer unsupported" "$work/unigram.json" "model.type: 'Unigram' is not supported (only BPE)" -- \
  encode --tokenizer "$work/unigram.json" --text x
expect_error "tokenizer dir without files" "$work/empty_dir" "no tokenizer.json, nor encoder.json and vocab.bpe" -- \
  inspect --tokenizer "$work/empty_dir" "$good"
expect_error "format" "--format" "expected auto, text, jsonl or brown, got 'csv'" -- tokenize --format csv --out "$work/o" "$work/a.txt"
expect_error "brown format on text" "$work/a.txt:1: word 'Hello' has no /tag" -- \
  tokenize --format brown --out "$work/o" "$work/a.txt"
expect_error "unknown option" "unknown option '--tokeniser'" "did you mean '--tokenizer'" -- tokenize --tokeniser x
expect_error "val fraction" "--val-fraction" "[0, 1)" -- tokenize --val-fraction 1 --out "$work/o" "$work/a.txt"
expect_error "decode bad id" "decode: expected token ids" "'x1'" -- decode 1 x1
expect_error "decode id outside" "token 300 is not in the vocabulary" -- decode 300
expect_error "fetch unknown" "unknown package 'left-pad'" -- fetch --cache "$work/npm" left-pad
expect_error "unknown command" "unknown command 'tokenise'" -- tokenise

cli_finish "all cases passed"
