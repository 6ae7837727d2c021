// Starting a cluster host (test/cluster/host.ts) as a child process and talking to its control
// port: shared by the acceptance test and bench/cluster.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HOST = fileURLToPath(new URL('./host.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A running host process. */
export interface HostProcess {
  name: string;
  child: ChildProcess;
  /** Its control port on 127.0.0.1. */
  port: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** Sends one JSON command to the control port; rejects with the host's answer when not ok. */
  rpc<T = Record<string, unknown>>(command: Record<string, unknown>): Promise<T>;
}

/** What a host runs on: its manager's PostgreSQL schema, Redis key prefix and lease TTL. */
export interface HostSetup {
  name: string;
  schema: string;
  prefix: string;
  ttlMs: number;
}

/** Starts a host and waits until it prints `ready <port>`; rejects when it exits before. */
export async function spawnHost(setup: HostSetup): Promise<HostProcess> {
  const { name } = setup;
  const child = spawn(process.execPath, ['--import', 'tsx', HOST], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CLUSTER_SCHEMA: setup.schema,
      CLUSTER_PREFIX: setup.prefix,
      CLUSTER_TTL_MS: String(setup.ttlMs),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /ready (\d+)/.exec(stdout);
      if (match) resolve(Number(match[1]));
    });
    void exited.then(() => reject(new Error(`host ${name} exited before ready: ${stderr}`)));
  });
  return {
    name,
    child,
    port,
    exited,
    async rpc<T>(command: Record<string, unknown>): Promise<T> {
      const response = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        body: JSON.stringify(command),
      });
      const body = (await response.json()) as T;
      if (!response.ok) throw new Error(`host ${name} ${String(command.op)}: ${JSON.stringify(body)}`);
      return body;
    },
  };
}
