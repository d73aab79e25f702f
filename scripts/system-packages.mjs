// Before `npm test`: what npm cannot install. Debian's Chromium (browser tests), PostgreSQL and
// Redis (the cluster's store and log streams; the tests start servers of their own), nftables (packet
// loss in the network fault tests: this kernel has no netem). As root with apt-get they are
// installed; otherwise this stops at once with the command to run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const has = {
  chromium: () => fs.existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'),
  'redis-server': () => fs.existsSync('/usr/bin/redis-server'),
  nftables: () => fs.existsSync('/usr/sbin/nft'),
  postgresql: () => fs.existsSync('/usr/lib/postgresql') && fs.readdirSync('/usr/lib/postgresql').some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/postgres`)),
};
const missing = Object.keys(has).filter((name) => !has[name]());
if (missing.length === 0) process.exit(0);

const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
const canApt = process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get');
if (!canApt) {
  process.stderr.write(`npm test needs Debian packages npm cannot install: ${missing.join(', ')}.\nRun as root:  ${command}\n`);
  process.exit(1);
}
process.stdout.write(`installing ${missing.join(', ')} from Debian's packages (about a minute)\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
