import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalLogSource } from '../../server/logs/logSource.js';
import { LogWatcher } from '../../server/logs/logWatcher.js';
import { logSourceContract } from './logSource.contract.js';

logSourceContract('local file', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-source-')), 'run.log');
  const watcher = new LogWatcher();
  return {
    source: new LocalLogSource(file, watcher),
    append: async (bytes) => fs.appendFileSync(file, bytes),
    replace: async (bytes) => {
      fs.writeFileSync(`${file}.new`, bytes);
      fs.renameSync(`${file}.new`, file);
    },
    done: () => watcher.close(),
  };
});
