import { startCluster } from '../helpers/cluster.js';
import { PROTOCOL_ENV, PROTOCOL_PIPELINES, protocolSuite } from '../ws/protocol.suite.js';

// The same protocol tests against each hub of a cluster (PostgreSQL, Redis, 2 hubs, 2 workers).
for (const index of [0, 1]) {
  protocolSuite(`cluster hub ${index + 1}`, async () => {
    const cluster = await startCluster({ pipelines: PROTOCOL_PIPELINES, env: PROTOCOL_ENV });
    return { hub: cluster.hubs[index], stop: () => cluster.stop() };
  });
}
