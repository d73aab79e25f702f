// Step 2: a provisional definition for each term, from the sentences that use it.
import fs from 'node:fs';
import { env, listDocuments, pace, readOutput, splitSentences, writeOutput } from './lib.js';

const terms = readOutput('terms.json', 'extract');
const sentences = listDocuments(env('HUB_DOC_ROOT')).flatMap((file) => splitSentences(fs.readFileSync(file, 'utf8')));
const mentions = (term) => sentences.filter((sentence) => sentence.toLowerCase().includes(term));
// A sentence that says what the term is reads like a definition; prefer it.
const defining = (term, sentence) => new RegExp(`${term}(\\s+(is|are|means|refers to)\\b|とは|は)`, 'iu').test(sentence);

const glossary = [];
for (const [index, { term, frequency }] of terms.entries()) {
  const uses = mentions(term);
  const definition = uses.find((sentence) => defining(term, sentence)) ?? uses[0] ?? null;
  glossary.push({ term, frequency, definition, uses: uses.length });
  console.log(`[${index + 1}/${terms.length}] ${term}: ${definition ? definition.slice(0, 80) : '(no sentence)'}`);
  if (index % 5 === 0) await pace();
}
writeOutput('provisional.json', glossary);
