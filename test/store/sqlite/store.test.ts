import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../../../server/store/sqlite/store.js';
import { runStoreContract } from '../runStore.contract.js';

runStoreContract('sqlite', () => openSqliteStore(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hub-store-')), 'hub.sqlite')));
