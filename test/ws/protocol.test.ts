import { startHub } from '../helpers/hub.js';
import { PROTOCOL_ENV, PROTOCOL_PIPELINES, protocolSuite } from './protocol.suite.js';

protocolSuite('embedded', async () => {
  const hub = await startHub({ env: PROTOCOL_ENV, pipelines: PROTOCOL_PIPELINES });
  return { hub, stop: () => hub.stop() };
});
