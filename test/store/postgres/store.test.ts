import { openPostgresStore } from '../../../server/store/postgres/store.js';
import { startPostgres } from '../../helpers/postgres.js';
import { runStoreContract } from '../runStore.contract.js';

// One server for the suite; every test gets a database of its own, migrated on open.
const postgres = await startPostgres();
runStoreContract('postgres', async () => openPostgresStore(await postgres.createDatabase()), () => postgres.stop());
