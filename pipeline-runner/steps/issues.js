// Step 3: terms without a usable definition, near-duplicates, and ambiguous terms.
import { pace, readOutput, writeOutput } from './lib.js';

const glossary = readOutput('provisional.json', 'provisional');
const found = [];
const report = (kind, term, detail) => {
  found.push({ kind, term, detail });
  console.log(`${kind}: ${term} (${detail})`);
};
const stem = (term) => term.replace(/(ies|es|s)$/u, '');
for (const entry of glossary) {
  if (!entry.definition || entry.definition.length < 20) report('undefined', entry.term, 'no sentence long enough to define it');
  else if (entry.uses >= 4 && !new RegExp(`${entry.term}\\s+(is|are|means)|とは`, 'iu').test(entry.definition)) report('ambiguous', entry.term, `${entry.uses} uses and none that defines it`);
}
const byStem = new Map();
for (const entry of glossary) {
  const key = stem(entry.term);
  if (byStem.has(key)) report('near_duplicate', entry.term, `same stem as ${byStem.get(key)}`);
  else byStem.set(key, entry.term);
}
await pace();
console.log(`${found.length} issues among ${glossary.length} terms`);
writeOutput('issues.json', found);
