import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

/**
 * Machines on a network, for fault tests: each a network namespace of its own, joined by a veth pair
 * to a bridge on this host, which has the address the cluster's services listen on. Cutting a
 * machine's cable (its veth down on the bridge side) is a real partition: the kernel drops its
 * packets without a word, as a switch that lost the port would, and TCP retransmits once it heals.
 * `tc netem` (latency, loss) is not in this machine's kernel, so partitions are all or nothing.
 */
export interface Machine {
  name: string;
  /** its address on the network */
  address: string;
  /** spawns a process on this machine (its network namespace) */
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** cuts its cable: nothing in or out until `heal` */
  partition(): void;
  heal(): void;
}

export interface Network {
  /** this host's address on the network: where services listen for the machines */
  hostAddress: string;
  /** the network, for a server's allow list */
  cidr: string;
  machines: Machine[];
  destroy(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Why network namespaces cannot be used here, or null when they can (root, `ip` and a bridge). */
export function whyNoNetworkNamespaces(): string | null {
  if (process.getuid?.() !== 0) return 'not root: network namespaces need CAP_NET_ADMIN';
  if (!fs.existsSync('/usr/sbin/ip') && !fs.existsSync('/sbin/ip') && !fs.existsSync('/usr/bin/ip')) return 'no `ip` (apt-get install -y iproute2)';
  const probe = `hubprobe${process.pid % 10_000}`;
  try {
    ip('link', 'add', probe, 'type', 'bridge');
    ip('link', 'del', probe);
    return null;
  } catch (error) {
    return `no bridge in this kernel: ${(error as Error).message.split('\n')[0]}`;
  }
}

let networks = 0;

/**
 * A network of `count` machines. Names and the subnet carry this process's id, so tests running at
 * once do not meet; `destroy` removes every namespace and link (a killed test leaves them: they are
 * named `hub<pid>…`).
 */
export function createNetwork(count: number): Network {
  const id = `${process.pid % 10_000}${String.fromCharCode(97 + (networks++ % 26))}`;
  // 10.(200..249).(0..255).0/24 from the pid: distinct for tests at once.
  const subnet = `10.${200 + (Math.floor(process.pid / 256) % 50)}.${(process.pid + networks * 7) % 256}`;
  const bridge = `hub${id}br`;
  const hostAddress = `${subnet}.1`;
  const created: string[] = [];
  const destroy = () => {
    for (const name of created.reverse()) {
      try {
        if (name.startsWith('ns:')) ip('netns', 'del', name.slice(3));
        else ip('link', 'del', name);
      } catch {
        // already gone (a veth goes with its namespace)
      }
    }
    created.length = 0;
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    created.push(bridge);
    ip('addr', 'add', `${hostAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    const machines: Machine[] = [];
    for (let i = 0; i < count; i++) {
      const name = `hub${id}m${i}`;
      const cable = `hub${id}c${i}`;
      const inside = `hub${id}i${i}`;
      ip('netns', 'add', name);
      created.push(`ns:${name}`);
      ip('link', 'add', cable, 'type', 'veth', 'peer', 'name', inside);
      created.push(cable);
      ip('link', 'set', inside, 'netns', name);
      ip('link', 'set', cable, 'master', bridge);
      ip('link', 'set', cable, 'up');
      const address = `${subnet}.${10 + i}`;
      ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/24`, 'dev', inside);
      ip('netns', 'exec', name, 'ip', 'link', 'set', inside, 'up');
      ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
      machines.push({
        name,
        address,
        spawn: (command, args, options = {}) => spawn('ip', ['netns', 'exec', name, command, ...args], options),
        partition: () => ip('link', 'set', cable, 'down'),
        heal: () => ip('link', 'set', cable, 'up'),
      });
    }
    return { hostAddress, cidr: `${subnet}.0/24`, machines, destroy };
  } catch (error) {
    destroy();
    throw error;
  }
}
