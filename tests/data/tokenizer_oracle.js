// The reference side of the tokenizer tests (run by tokenizer_oracle.sh with node). The JavaScript encoders
// of the npm packages gpt-3-encoder (GPT-2) and js-tiktoken (cl100k_base, whose pattern is Llama 3's) are
// the oracles; this script only drives them, converts their vocabularies to tokenizer.json files, and
// compares their ids with the shards nsa-data wrote.
//
//   node tokenizer_oracle.js compare gpt2 GPT3_ENCODER_DIR DOCS.jsonl EOT SHARD...
//   node tokenizer_oracle.js compare cl100k JS_TIKTOKEN_DIR DOCS.jsonl EOT SHARD...
//       every document of DOCS.jsonl ({"text": ...} per line), encoded by the oracle, with EOT before
//       each, must equal the tokens of the shards, concatenated; prints the first difference otherwise
//   node tokenizer_oracle.js gpt2-json GPT3_ENCODER_DIR OUT.json     GPT-2's files as a tokenizer.json
//   node tokenizer_oracle.js cl100k-json JS_TIKTOKEN_DIR OUT.json    cl100k_base as a tokenizer.json
//       (Llama 3's pre-tokenizer, ignore_merges, merges derived from the ranks)
'use strict';
const fs = require('fs');
const path = require('path');

function fail(message) {
  console.error('oracle: FAIL: ' + message);
  process.exit(1);
}

function readShards(files) {
  const parts = [];
  for (const f of files) {
    const b = fs.readFileSync(f);
    const header = new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + 1024));
    if (header[0] !== 20240520) fail(`${f}: bad magic ${header[0]}`);
    const width = header[1] === 1 ? 2 : 4;
    const count = header[2];
    if (b.length !== 1024 + count * width) fail(`${f}: size ${b.length} does not match ${count} tokens`);
    const body = b.buffer.slice(b.byteOffset + 1024, b.byteOffset + b.length);
    parts.push(width === 2 ? new Uint16Array(body) : new Uint32Array(body));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint32Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

function gpt2Encoder(dir) {
  const e = require(path.resolve(dir, 'Encoder.js'));
  return (text) => e.encode(text);
}

function cl100kEncoder(dir) {
  // js-tiktoken's one dependency, base64-js, is not fetched: Node's Buffer does its one job.
  const Module = require('module');
  const load = Module._load;
  Module._load = function (request, ...rest) {
    if (request === 'base64-js') return {toByteArray: (s) => Uint8Array.from(Buffer.from(s, 'base64'))};
    return load.call(this, request, ...rest);
  };
  const { Tiktoken } = require(path.resolve(dir, 'dist/index.cjs'));
  const ranks = require(path.resolve(dir, 'dist/ranks/cl100k_base.cjs'));
  const enc = new Tiktoken(ranks);
  return (text) => enc.encode(text, [], []);  // special tokens are ordinary text, as in nsa-data
}

function compare(kind, dir, docsFile, eot, shardFiles) {
  const encode = kind === 'gpt2' ? gpt2Encoder(dir) : cl100kEncoder(dir);
  const docs = fs.readFileSync(docsFile, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
  const got = readShards(shardFiles);
  const t0 = Date.now();
  let at = 0, bytes = 0;
  for (let d = 0; d < docs.length; ++d) {
    const expected = [Number(eot)].concat(encode(docs[d]));
    bytes += Buffer.byteLength(docs[d]);
    for (let i = 0; i < expected.length; ++i, ++at) {
      if (at >= got.length || got[at] !== expected[i]) {
        const from = Math.max(0, i - 5);
        fail(`document ${d}, token ${i} (stream position ${at}): nsa-data ${at < got.length ? got[at] : 'nothing'}, ` +
             `the oracle ${expected[i]}; oracle ids ${from}..: ${expected.slice(from, i + 6).join(' ')}; ` +
             `nsa-data: ${Array.from(got.slice(at - (i - from), at + 6)).join(' ')}; text: ` +
             JSON.stringify(docs[d].slice(0, 200)));
      }
    }
  }
  if (at !== got.length) fail(`the shards hold ${got.length} tokens, the oracle ${at}`);
  console.log(`oracle: ${kind}: ${docs.length} documents, ${bytes} bytes, ${at} tokens: every id equal ` +
              `(oracle encoded in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

// GPT-2's byte-level alphabet (as GPT-2's bytes_to_unicode): byte -> the character that stands for it.
function byteLevelChars() {
  const chars = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    chars[b] = String.fromCodePoint(printable ? b : next++);
  }
  return chars;
}

function writeTokenizerJson(out, preTokenizer, vocab, merges, added, ignoreMerges) {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map(([id, content]) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true})),
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: null,
    decoder: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    model: {type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
            fuse_unk: false, byte_fallback: false, ignore_merges: ignoreMerges, vocab, merges},
  };
  fs.writeFileSync(out, JSON.stringify(json));
}

function gpt2Json(dir, out) {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n');
  const merges = lines.slice(1).filter((l) => l.length > 0);
  writeTokenizerJson(out, {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true},
                     vocab, merges, [[50256, '<|endoftext|>']], false);
  console.log(`oracle: wrote ${out} (${Object.keys(vocab).length} tokens, ${merges.length} merges)`);
}

// cl100k_base's ranks as a Hugging Face BPE: a token's merges are its splits into two shorter tokens, ranked
// by the token's rank (ties by the parts' ranks), as transformers converts tiktoken vocabularies.
function cl100kJson(dir, out) {
  const ranks = require(path.resolve(dir, 'dist/ranks/cl100k_base.cjs'));
  const chars = byteLevelChars();
  // js-tiktoken's format: "! offset tok tok ..." groups: base64 tokens whose ranks count up from offset.
  const rankOf = new Map();
  const tokens = [];
  for (const group of ranks.bpe_ranks.split('\n')) {
    if (!group) continue;
    const [first, offsetText, ...rest] = group.split(' ');
    let rank = Number.parseInt(offsetText, 10);
    void first;
    for (const b64 of rest) {
      const bytes = Buffer.from(b64, 'base64');
      const key = bytes.toString('latin1');
      rankOf.set(key, rank);
      tokens.push([rank, key]);
      ++rank;
    }
  }
  tokens.sort((a, b) => a[0] - b[0]);
  const vocab = {};
  const toLevel = (key) => Array.from(key, (c) => chars[c.charCodeAt(0)]).join('');
  for (const [rank, key] of tokens) vocab[toLevel(key)] = rank;
  const merges = [];
  for (const [rank, key] of tokens) {
    if (key.length < 2) continue;
    const local = [];
    for (let i = 1; i < key.length; ++i) {
      const l = key.slice(0, i), r = key.slice(i);
      if (rankOf.has(l) && rankOf.has(r) && rankOf.get(l) < rank && rankOf.get(r) < rank) local.push([l, r]);
    }
    local.sort((a, b) => rankOf.get(a[0]) - rankOf.get(b[0]) || rankOf.get(a[1]) - rankOf.get(b[1]));
    for (const [l, r] of local) merges.push([toLevel(l), toLevel(r)]);
  }
  const llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
                 "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const pre = {type: 'Sequence', pretokenizers: [
    {type: 'Split', pattern: {Regex: llama3}, behavior: 'Isolated', invert: false},
    {type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false}]};
  const added = Object.entries(ranks.special_tokens).map(([content, id]) => [id, content]);
  writeTokenizerJson(out, pre, vocab, merges, added, true);
  console.log(`oracle: wrote ${out} (${tokens.length} tokens, ${merges.length} merges, ${added.length} special)`);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'compare' && args.length >= 5) {
  compare(args[0], args[1], args[2], args[3], args.slice(4));
} else if (mode === 'gpt2-json' && args.length === 2) {
  gpt2Json(args[0], args[1]);
} else if (mode === 'cl100k-json' && args.length === 2) {
  cl100kJson(args[0], args[1]);
} else {
  fail('usage: see the comment at the top of tokenizer_oracle.js');
}
