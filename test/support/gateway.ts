/**
 * Starts a real phpgate (real php-cgi pools) in this process on a free loopback port, with its log captured,
 * for tests. Configuration is given as gateway.yaml text, so tests exercise the real loader too.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../../config/load.js';
import type { GatewayConfig } from '../../config/types.js';
import { Gateway } from '../../gateway/server.js';
import { freePort } from './proc.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly config: Readonly<GatewayConfig>;
  readonly port: number;
  readonly base: string;
  /** The admin listener's base URL, or '' without `admin: true`. */
  readonly adminBase: string;
  /** Every log entry so far, parsed. */
  logs(): Array<Record<string, unknown> & { msg?: string }>;
  stop(): Promise<void>;
}

/**
 * `admin: true` gives the gateway an admin listener on a free port (see `adminBase`); without it there is none,
 * so gateways of test files running side by side never fight over the default admin port.
 */
export async function startGateway(yamlText: string, opts: { docroot?: string; admin?: boolean } = {}): Promise<RunningGateway> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-test-'));
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      if (process.env['PHPGATE_TEST_LOG'] === '1') process.stderr.write(chunk);
      cb();
    },
  });
  const text = `${yamlText}\n`;
  let loaded: Readonly<GatewayConfig>;
  try {
    loaded = loadConfig({
      text,
      file: 'test.yaml',
      baseDir: tmp,
      env: { PATH: process.env['PATH'] },
      overrides: opts.docroot === undefined ? {} : { docroot: opts.docroot },
    });
  } catch (err) {
    // A YAML that does not load (tests of bad configs, imported configs) leaves no temp dir behind.
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  // Port 0 (any free port) and a private socket directory per gateway, so tests can run side by side.
  const config: Readonly<GatewayConfig> = {
    ...loaded,
    server: {
      ...loaded.server,
      host: '127.0.0.1',
      port: 0,
      // No lame duck unless a test asks for one: nothing balances these gateways, and every stop would wait for it.
      timeouts: { ...loaded.server.timeouts, lame_duck_ms: /lame_duck_ms/.test(yamlText) ? loaded.server.timeouts.lame_duck_ms : 0 },
    },
    admin: { ...loaded.admin, host: '127.0.0.1', port: opts.admin === true ? await freePort() : 0 },
    php: { ...asRootUnlessSet(loaded.php), socket_dir: path.join(tmp, 'sock') },
    pools: loaded.pools.map(asRootUnlessSet),
  };
  const log = pino({ level: 'debug' }, sink);
  const gateway = new Gateway(config, log);
  await gateway.start();
  const port = gateway.address().port;
  return {
    gateway,
    config,
    port,
    base: `http://127.0.0.1:${port}`,
    adminBase: opts.admin === true ? `http://127.0.0.1:${gateway.adminAddress()!.port}` : '',
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      await gateway.stop();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * Run as root (CI), PHP would run as www-data and could not read the tests' docroots (0700 temp dirs, a clone
 * under /root): a test that does not choose php.user gets `root`, as it had before PHP stopped running as root.
 */
export const PHP_AS_ROOT: boolean = process.geteuid?.() === 0;

function asRootUnlessSet<T extends { readonly user: string }>(settings: T): T {
  return PHP_AS_ROOT && settings.user === '' ? { ...settings, user: 'root' } : settings;
}

/** The same for a gateway the test starts as a separate process: its environment (PHPGATE_PHP_USER). */
export const PHP_USER_ENV: Readonly<Record<string, string>> = PHP_AS_ROOT ? { PHPGATE_PHP_USER: 'root' } : {};

export interface SimpleResponse {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

/** One HTTP/1.1 request with node's client: no normalisation of the path, exact headers. */
export function request(
  base: string,
  target: string,
  opts: {
    method?: string;
    headers?: http.OutgoingHttpHeaders | Array<[string, string]>;
    body?: Buffer | string | Buffer[];
    chunked?: boolean;
    timeoutMs?: number;
  } = {},
): Promise<SimpleResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders | string[] = Array.isArray(opts.headers) ? opts.headers.flat() : { ...opts.headers };
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: opts.method ?? 'GET',
      path: target,
      headers,
      agent: false,
      setHost: !Array.isArray(opts.headers) || !opts.headers.some(([k]) => k.toLowerCase() === 'host'),
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`request ${target} timed out`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          text: body.toString('utf8'),
        });
      });
    });
    const body = opts.body;
    if (body === undefined) {
      req.end();
    } else if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else {
      if (!opts.chunked && !Array.isArray(opts.headers)) req.setHeader('Content-Length', Buffer.byteLength(body));
      req.end(body);
    }
  });
}

/** The fixture dump (dump.php / index.php / info.php) parsed. */
export interface Dump {
  server: Record<string, string>;
  /** getenv() without a name: the process environment PHP sees. */
  env: Record<string, string>;
  get: Record<string, unknown>;
  post: Record<string, unknown>;
  files: Record<string, unknown>;
  cookie: Record<string, string>;
  input: string;
  input_len: number;
}

export function dump(res: SimpleResponse): Dump {
  if (res.status !== 200) throw new Error(`expected a dump, got ${res.status}: ${res.text.slice(0, 300)}`);
  return JSON.parse(res.text) as Dump;
}
