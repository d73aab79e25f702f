// Step 1: candidate terms with their frequency, from the .txt/.md files in HUB_DOC_ROOT.
import fs from 'node:fs';
import path from 'node:path';
import { env, fail, listDocuments, pace, writeOutput } from './lib.js';

const STOP = new Set('about after also been before being between both could does each from have into more most much only other over same some such than that their them then there these they this those through under very were what when where which while will with within would your used uses using make makes made'.split(' '));
const root = env('HUB_DOC_ROOT');
const documents = listDocuments(root);
if (documents.length === 0) fail('No documents found in doc_root');

const counts = new Map();
const add = (term) => counts.set(term, (counts.get(term) ?? 0) + 1);
for (const file of documents) {
  const text = fs.readFileSync(file, 'utf8');
  let found = 0;
  for (const [word] of text.matchAll(/[A-Za-z][A-Za-z-]{3,}/g)) {
    const term = word.toLowerCase();
    if (!STOP.has(term)) (add(term), found++);
  }
  // Japanese: runs of katakana or of kanji are term candidates.
  for (const [word] of text.matchAll(/[\p{Script=Katakana}ー]{2,}|\p{Script=Han}{2,}/gu)) (add(word), found++);
  console.log(`read ${path.relative(root, file)}: ${found} candidate words`);
  await pace();
}
const terms = [...counts].filter(([, count]) => count >= 2).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([term, frequency]) => ({ term, frequency }));
for (const { term, frequency } of terms.slice(0, 15)) console.log(`term ${term} ×${frequency}`);
console.log(`${terms.length} candidate terms from ${documents.length} documents`);
writeOutput('terms.json', terms);
