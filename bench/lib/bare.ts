/**
 * Starts the bare ceiling server (./bare-server.ts) as a node process of its own, on 127.0.0.1, answering the
 * bytes of one file with the headers phpgate sends for it, copied from phpgate's own answer at run time and then
 * checked equal (so the ceiling follows phpgate when its headers change).
 *
 * The script is compiled to plain JavaScript into a private temp dir first (TypeScript's transpileModule: types
 * stripped, nothing else): run through tsx, its RSS would carry tsx's loader, as phpgate's would. It is spawned as
 * the leader of its own process group with an IPC channel, over which it reports its port; stopping it is SIGTERM,
 * then SIGKILL to its group past a grace, and it exits by itself if the bench goes away (the channel closes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { tail } from '../../test/support/nginx-fpm.js';
import { ServerProcess, type RunningServer } from './server-process.js';
import type { BareConfig, BareReady } from './bare-server.js';
import type { Got } from './http.js';

export type { BareConfig } from './bare-server.js';

export type BareServer = RunningServer;

const SOURCE = fileURLToPath(new URL('./bare-server.ts', import.meta.url));
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
/** Headers node's HTTP/1.1 and HTTP/2 servers write themselves for every answer: not copied, compared apart from Date. */
const WRITTEN_BY_NODE = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);
/** node:http's keep-alive timeout when an answer names none. */
const NODE_KEEPALIVE_MS = 5_000;

/** An answer's header lines as [name, value] pairs, in the order they came, pseudo-headers (HTTP/2) left out. */
function headerPairs(res: Got): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    if (!res.rawHeaders[i]!.startsWith(':')) pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
  }
  return pairs;
}

/** The headers of `res` (phpgate's answer) the bare server must send itself, with their names' spelling and order. */
export function copiedHeaders(res: Got): Array<[string, string]> {
  return headerPairs(res).filter(([name]) => !WRITTEN_BY_NODE.has(name.toLowerCase()));
}

/** phpgate's keep-alive timeout as its answer states it (`Keep-Alive: timeout=75`), so node writes the same header. */
export function keepAliveTimeoutMs(res: Got): number {
  const m = /timeout=(\d+)/.exec(String(res.headers['keep-alive'] ?? ''));
  return m === null ? NODE_KEEPALIVE_MS : Number(m[1]) * 1000;
}

/** Fails unless `got` (the bare server's answer) has the header lines of `want` (phpgate's), Date apart. */
export function checkSameHeaders(who: string, what: string, got: Got, want: Got): void {
  const lines = (res: Got) =>
    headerPairs(res)
      .filter(([name]) => name.toLowerCase() !== 'date')
      .map(([n, v]) => `${n}: ${v}`);
  const [g, w] = [lines(got), lines(want)];
  if (g.join('\n') !== w.join('\n')) {
    throw new Error(`${who} ${what}: its headers differ from phpgate's (Date apart):\n  ${who}: ${g.join(' | ')}\n  phpgate: ${w.join(' | ')}`);
  }
}

/** bare-server.ts as plain JavaScript (an ES module), in `dir`. */
async function compile(dir: string): Promise<string> {
  const out = ts.transpileModule(await readFile(SOURCE, 'utf8'), {
    fileName: SOURCE,
    reportDiagnostics: true,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  if (out.diagnostics !== undefined && out.diagnostics.length > 0) {
    throw new Error(
      `could not compile ${SOURCE}: ${ts.formatDiagnostics(out.diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => dir, getNewLine: () => '\n' })}`,
    );
  }
  const script = path.join(dir, 'bare-server.mjs');
  await writeFile(script, out.outputText);
  return script;
}

export async function startBare(config: BareConfig): Promise<BareServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-bare-'));
  const logFile = path.join(dir, 'bare.log');
  const proc = new ServerProcess(dir, STOP_GRACE_MS);
  const { alive, stop } = proc;

  try {
    const script = await compile(dir);
    const fd = openSync(logFile, 'a');
    let c: ChildProcess;
    try {
      c = spawn(process.execPath, [script, JSON.stringify(config)], { detached: true, stdio: ['ignore', fd, fd, 'ipc'] });
    } finally {
      closeSync(fd);
    }
    proc.adopt(c);
    const ready = await new Promise<BareReady | string>((resolve) => {
      const timer = setTimeout(() => resolve(`not listening after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      c.once('message', (m: BareReady) => {
        clearTimeout(timer);
        resolve(m);
      });
      void proc.exited.then(() => {
        clearTimeout(timer);
        resolve(`exited (${c.signalCode ?? `code ${c.exitCode}`})`);
      });
    });
    if (typeof ready === 'string') throw new Error(`bare ${config.protocol} server ${ready}; its log:\n${await tail(logFile)}`);
    return { port: ready.port, pid: c.pid!, alive, logTail: () => tail(logFile), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
