#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// tok-hf.js: Hugging Face `tokenizers` (npm, Rust core) as the reference for the cm-tokenize tests.
//
//   node tok-hf.js train  PKG OUT.json TEXT...   train GPT-2-style byte-level BPE (the binding's
//                                              default BpeTrainer: vocab 30000 fixed, min_frequency
//                                              0, no special tokens), then add <|endoftext|>
//   node tok-hf.js encode PKG TOK.json STRINGS  print the ids of each document (one JSON string
//                                              per input line) as a JSON array per line
//   node tok-hf.js split  PKG - STRINGS         print each document's ByteLevel pre-tokens
//                                              (GPT-2 regex) as a JSON array of strings
// PKG is the folder of the installed npm package `tokenizers`.
'use strict';
const fs = require('fs');
const path = require('path');

const [cmd, pkg, tokfile, ...rest] = process.argv.slice(2);
if (!cmd || !pkg || !tokfile) {
  console.error('usage: tok-hf.js train PKG OUT.json TEXT... | encode PKG TOK.json STRINGS');
  process.exit(2);
}
const tk = require(path.resolve(pkg));

const byteLevel = (prefix, trim) => ({ type: 'ByteLevel', add_prefix_space: prefix, trim_offsets: trim, use_regex: true });

async function main() {
  if (cmd === 'train') {
    const empty = {
      version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: byteLevel(false, true), post_processor: byteLevel(true, false), decoder: byteLevel(true, true),
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
               fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: {}, merges: [] },
    };
    const t = tk.Tokenizer.fromString(JSON.stringify(empty));
    t.train(rest);
    t.addSpecialTokens(['<|endoftext|>']);
    t.save(tokfile, true);
  } else if (cmd === 'encode') {
    const t = tk.Tokenizer.fromFile(tokfile);
    const lines = fs.readFileSync(rest[0], 'utf8').split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    const docs = lines.map((l) => JSON.parse(l));
    let out = '';
    for (let i = 0; i < docs.length; i += 500) {
      const encs = await t.encodeBatch(docs.slice(i, i + 500), { addSpecialTokens: false });
      for (const e of encs) out += '[' + e.getIds().join(',') + ']\n';
    }
    process.stdout.write(out);
  } else if (cmd === 'split') {
    const pre = tk.byteLevelPreTokenizer(false, true);
    const lines = fs.readFileSync(rest[0], 'utf8').split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    let out = '';
    for (const l of lines) out += JSON.stringify(pre.preTokenizeString(JSON.parse(l)).map((p) => p[0])) + '\n';
    process.stdout.write(out);
  } else {
    console.error('tok-hf.js: unknown command ' + cmd);
    process.exit(2);
  }
}
main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
