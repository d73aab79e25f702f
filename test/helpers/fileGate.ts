import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A file a step waits for (`waitCommand`, shell): the test opens the gate when it is ready, so it
 * decides when the step goes on, whatever the machine's load. `remove` in an `after` hook.
 */
export function fileGate() {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-gate-')), 'open');
  return {
    waitCommand: `while [ ! -e '${file}' ]; do sleep 0.05; done`,
    open: () => fs.writeFileSync(file, ''),
    remove: () => fs.rmSync(path.dirname(file), { recursive: true, force: true }),
  };
}
