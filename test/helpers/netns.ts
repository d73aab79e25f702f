import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

/**
 * Machines on a network, for fault tests: each a network namespace of its own, joined by a veth pair
 * to a bridge on this host, which has the address the cluster's services listen on. Cutting a
 * machine's cable (its veth down on the bridge side) is a real partition: the kernel drops its
 * packets without a word, as a switch that lost the port would, and TCP retransmits once it heals.
 * `tc netem` is not in this machine's kernel (no queueing disciplines at all): packet loss is
 * nftables' `numgen random` dropping packets in the machine's own firewall, and latency is left to
 * the TCP proxy (test/helpers/tcpProxy.ts).
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
  /** drops `percent` of its packets, in and out, at random (0: none), until called again */
  lose(percent: number): void;
  /** packets its loss has dropped so far */
  dropped(): number;
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
const nftIn = (namespace: string, script: string) => execFileSync('ip', ['netns', 'exec', namespace, 'nft', '-f', '-'], { input: script, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
const LOSS_TABLE = 'inet hubloss';

/** A firewall table that drops `permille` of the packets in and out of a namespace, counting them. */
function lossTable(permille: number): string {
  const rule = `numgen random mod 1000 < ${permille} counter drop`;
  return `table ${LOSS_TABLE} {\n chain in {\n type filter hook input priority 0; policy accept;\n ${rule}\n }\n chain out {\n type filter hook output priority 0; policy accept;\n ${rule}\n }\n}\n`;
}

/** Packets the namespace's loss table has dropped (0 without one). */
function countDropped(namespace: string): number {
  let listing = '';
  try {
    listing = nftIn(namespace, `list table ${LOSS_TABLE}\n`);
  } catch {
    // no loss set
  }
  return [...listing.matchAll(/packets (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Why packet loss cannot be injected here (no `nft`, or a kernel without nf_tables), or null. */
export function whyNoPacketLoss(): string | null {
  const why = whyNoNetworkNamespaces();
  if (why) return why;
  const probe = `hubprobe${process.pid % 10_000}`;
  try {
    ip('netns', 'add', probe);
    try {
      nftIn(probe, lossTable(1));
      return null;
    } finally {
      ip('netns', 'del', probe);
    }
  } catch (error) {
    return `no nftables here (apt-get install -y nftables; a kernel with nf_tables): ${(error as Error).message.split('\n')[0]}`;
  }
}

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
      let droppedBefore = 0;
      ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/24`, 'dev', inside);
      ip('netns', 'exec', name, 'ip', 'link', 'set', inside, 'up');
      ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
      machines.push({
        name,
        address,
        spawn: (command, args, options = {}) => spawn('ip', ['netns', 'exec', name, command, ...args], options),
        partition: () => ip('link', 'set', cable, 'down'),
        heal: () => ip('link', 'set', cable, 'up'),
        lose: (percent) => {
          droppedBefore += countDropped(name);
          // Made if missing, then replaced whole in one transaction.
          nftIn(name, `table ${LOSS_TABLE} {}\ndelete table ${LOSS_TABLE}\n${percent > 0 ? lossTable(Math.round(percent * 10)) : ''}`);
        },
        dropped: () => droppedBefore + countDropped(name),
      });
    }
    return { hostAddress, cidr: `${subnet}.0/24`, machines, destroy };
  } catch (error) {
    destroy();
    throw error;
  }
}
