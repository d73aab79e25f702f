// Step 4: the refined glossary in Markdown, without the terms that issues flagged as duplicates.
import { pace, readOutput, writeOutput } from './lib.js';

const glossary = readOutput('provisional.json', 'provisional');
const issues = readOutput('issues.json', 'issues');
const flagged = new Map(issues.map((issue) => [issue.term, issue]));
const lines = ['# Glossary', ''];
let kept = 0;
for (const entry of [...glossary].sort((a, b) => a.term.localeCompare(b.term))) {
  const issue = flagged.get(entry.term);
  if (issue?.kind === 'near_duplicate') continue;
  lines.push(`**${entry.term}** (${entry.frequency}×): ${entry.definition ?? '_no definition found_'}${issue ? ` _(${issue.kind.replace('_', ' ')})_` : ''}`, '');
  kept++;
}
await pace();
console.log(`glossary: ${kept} terms (${glossary.length - kept} merged)`);
writeOutput('glossary.md', lines.join('\n'));
