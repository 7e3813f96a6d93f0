/**
 * The gateway's lifecycle: start the pools, listen, hand requests to the pipeline, stop cleanly.
 * Listening only; what happens to a request is pipeline.ts's business.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, PhpgateError } from '../config/errors.js';
import { patternMatchesEverything } from '../config/pattern.js';
import type { GatewayConfig, PoolSettings } from '../config/types.js';
import { writeHandshakeScript } from '../php/handshake.js';
import { reapStaleMasters } from '../php/master.js';
import { Pool } from '../php/pool.js';
import type { Logger } from './log.js';
import { Pipeline } from './pipeline.js';
import { Router } from './router.js';
import { DocrootGuard, FileInfoCache } from './file-cache.js';
import { StaticFiles } from './static.js';
import { parseTarget, type ParsedTarget } from './uri.js';
import { VERSION } from './version.js';

export const DEFAULT_POOL = 'default';
const STOP_GRACE_MS = 10_000;

export class Gateway {
  readonly #config: Readonly<GatewayConfig>;
  readonly #log: Logger;
  readonly #pools = new Map<string, Pool>();
  #server: http.Server | null = null;

  constructor(config: Readonly<GatewayConfig>, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  get pools(): ReadonlyMap<string, Pool> {
    return this.#pools;
  }

  address(): AddressInfo {
    const a = this.#server?.address();
    if (a === null || a === undefined || typeof a === 'string') throw new Error('gateway is not listening');
    return a;
  }

  async start(): Promise<void> {
    const c = this.#config;
    if (c.server.tls.cert !== '') {
      // Serving plain HTTP where HTTPS was asked for would be worse than not starting.
      throw new PhpgateError(ErrorCode.ConfigInvalid, `${c.source}: server.tls is not supported by this version of phpgate yet; remove it or terminate TLS in front`);
    }
    for (const what of notYetApplied(c)) this.#log.warn({ config: c.source }, `${what} is configured but not applied by this version yet`);
    const handshakeScript = writeHandshakeScript(c.php.socket_dir);
    reapStaleMasters(c.php.socket_dir, this.#log);
    // The default pool (php.*) exists unless the named pools already cover every path.
    const needsDefault = !c.pools.some((p) => p.patterns.some(patternMatchesEverything));
    const specs: Array<{ name: string; settings: PoolSettings }> = c.pools.map((p) => ({ name: p.name, settings: p }));
    if (needsDefault) specs.push({ name: DEFAULT_POOL, settings: c.php });
    for (const { name, settings } of specs) {
      this.#pools.set(name, new Pool({
        name,
        settings: { ...settings, ini: withHandshakeDir(settings.ini, c.php.socket_dir) },
        binary: c.php.binary,
        socketDir: c.php.socket_dir,
        handshakeScript,
        log: this.#log,
      }));
    }
    try {
      await Promise.all([...this.#pools.values()].map((p) => p.start()));
      await this.#listen(c);
    } catch (err) {
      // Pools that started must not outlive a gateway that could not (EADDRINUSE, a bad docroot link …).
      await this.#stopPools();
      throw err;
    }
    const a = this.address();
    this.#log.info({ host: a.address, port: a.port, docroot: c.php.docroot, pools: [...this.#pools.keys()], config: c.source }, 'phpgate listening');
  }

  async #listen(c: Readonly<GatewayConfig>): Promise<void> {
    const needsDefault = this.#pools.has(DEFAULT_POOL);
    const files = new FileInfoCache();
    const guard = new DocrootGuard(files, c.php.docroot, c.static.follow_symlinks);
    const router = new Router({
      php: c.php,
      pools: c.pools,
      static: c.static,
      defaultPool: needsDefault ? DEFAULT_POOL : c.pools[c.pools.length - 1]!.name,
      files,
      guard,
    });
    const pipeline = new Pipeline({
      router,
      static: new StaticFiles({ config: c.static, files, guard, log: this.#log }),
      errorPages: compileErrorPages(c.static.error_pages),
      pools: this.#pools,
      maxBodyBytes: Math.floor(c.server.max_body_mb * 1024 * 1024),
      bodyTimeoutMs: c.server.timeouts.body_ms,
      sendTimeoutMs: c.server.timeouts.send_ms,
      serverName: '',
      serverSoftware: `phpgate/${VERSION}`,
      log: this.#log,
    });
    const server = http.createServer({
      maxHeaderSize: c.server.limits.header_kb * 1024,
      headersTimeout: c.server.timeouts.header_ms,
      keepAliveTimeout: c.server.timeouts.keepalive_ms,
      requestTimeout: 0, // uploads and long PHP runs are bounded by body_ms and the pools' timeout_ms instead
    }, pipeline.handle);
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(c.server.port, c.server.host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  }

  /** Stops accepting, lets in-flight requests finish (bounded), then stops the PHP masters. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server !== null) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go idle as their last response ends; close them as they do, not after the grace.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
      await closed;
      clearInterval(sweep);
      clearTimeout(grace);
    }
    await this.#stopPools();
  }

  async #stopPools(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.stop()));
  }
}

/**
 * The handshake script lives in the socket directory, outside every docroot. If the user restricts PHP with
 * open_basedir, PHP would refuse to run it, so that one directory is added to the list.
 */
function withHandshakeDir(ini: Readonly<Record<string, string>>, dir: string): Readonly<Record<string, string>> {
  const basedir = ini['open_basedir'];
  if (basedir === undefined || basedir === '') return ini;
  return { ...ini, open_basedir: `${basedir}:${dir}` };
}

/** Configured sections whose features arrive in later releases: logged at start rather than silently ignored. */
function notYetApplied(c: Readonly<GatewayConfig>): string[] {
  const out: string[] = [];
  if (c.server.trusted_proxies.length > 0) out.push('server.trusted_proxies');
  if (c.server.redirect_http_port > 0) out.push('server.redirect_http_port');
  if (c.rate_limit.rules.length > 0) out.push('rate_limit.rules');
  if (c.cache.rules.length > 0) out.push('cache.rules');
  if (c.upstreams.length > 0) out.push('upstreams');
  return out;
}

/** error_pages URIs, parsed once (config/ checked they start with "/"). */
function compileErrorPages(pages: Readonly<Record<string, string>>): Map<number, ParsedTarget> {
  const out = new Map<number, ParsedTarget>();
  for (const [status, uri] of Object.entries(pages)) {
    const target = parseTarget(uri);
    if (target !== null) out.set(Number(status), target);
  }
  return out;
}
