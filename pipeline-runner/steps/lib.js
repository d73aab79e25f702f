// Shared helpers of the demo glossary steps. Plain JavaScript: the steps are an example of a user's
// pipeline, run by the runner like any other command.
import fs from 'node:fs';
import path from 'node:path';

export const env = (name) => {
  const value = process.env[name];
  if (!value) fail(`${name} is not set; this step is meant to be run by the hub's runner`);
  return value;
};

export function fail(message) {
  console.error(`error: ${message}`);
  // The runner puts this reason into the run's error_message.
  if (process.env.HUB_ERROR_FILE) fs.writeFileSync(process.env.HUB_ERROR_FILE, message);
  process.exit(1);
}

export const outputPath = (name) => path.join(env('HUB_OUTPUT_DIR'), name);

/** Replaces an output atomically, so a re-run never leaves half a file behind. */
export function writeOutput(name, content) {
  const file = outputPath(name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  fs.renameSync(`${file}.tmp`, file);
  console.log(`wrote ${name}`);
}

export function readOutput(name, producedBy) {
  try {
    return JSON.parse(fs.readFileSync(outputPath(name), 'utf8'));
  } catch {
    fail(`${name} not found in the output folder; run the "${producedBy}" step first (scope "full")`);
  }
}

export function listDocuments(root) {
  const found = [];
  const visit = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && !entry.name.startsWith('.')) visit(full);
      else if (entry.isFile() && /\.(txt|md)$/i.test(entry.name)) found.push(full);
    }
  };
  visit(root);
  return found.sort();
}

/** Sentences of English and Japanese text. */
export const splitSentences = (text) =>
  text.replace(/^#+\s.*$/gm, '').split(/(?<=[.!?。！？])\s*|\n{2,}/u).map((s) => s.replace(/\s+/g, ' ').trim()).filter((s) => s.length > 0);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A pause between log lines so the demo can be watched live; HUB_DEMO_DELAY_MS=0 turns it off. */
export const pace = () => sleep(Number(process.env.HUB_DEMO_DELAY_MS ?? 40));
