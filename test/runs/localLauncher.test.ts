import pino from 'pino';
import { LocalLauncher } from '../../server/runs/localLauncher.js';
import { launcherContract } from './launcher.contract.js';

launcherContract('local', (config, events, runnerCommand) => new LocalLauncher(config, events, pino({ level: 'silent' }), runnerCommand));
