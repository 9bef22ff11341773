// Counts the tokens of text files for the tool-search benchmark (benches/tool_search.rs), offline:
// gpt-tokenizer embeds its vocabularies, and o200k_base is the encoding of OpenAI's current models.
// Usage: node tokens.js <gpt-tokenizer's folder> <file>...
// Prints one JSON line: {"tokenizer": "<package> <version> <encoding>", "counts": [<n>, ...]}.
'use strict';
const fs = require('fs');
const path = require('path');

const [folder, ...files] = process.argv.slice(2);
if (!folder) {
  console.error('usage: node tokens.js <gpt-tokenizer folder> <file>...');
  process.exit(2);
}
const { countTokens } = require(path.join(folder, 'cjs/encoding/o200k_base.js'));
const { name, version } = require(path.join(folder, 'package.json'));
const counts = files.map((file) => countTokens(fs.readFileSync(file, 'utf8')));
console.log(JSON.stringify({ tokenizer: `${name} ${version} o200k_base`, counts }));
