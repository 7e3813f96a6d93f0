/**
 * The gateway's lifecycle: start the pools, listen, hand requests to the pipeline, reload, drain and stop.
 * Listening only; what happens to a request is pipeline.ts's business.
 *
 * A "generation" is one configuration in force: its pools (php-cgi masters) and the pipeline routing to them.
 * A reload starts a new generation beside the old one, moves the listener over, and stops the old pools once
 * their in-flight requests are done, so new PHP code and php.ini take effect without failing a request.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { patternMatchesEverything } from '../config/pattern.js';
import { DEFAULT_POOL_NAME } from '../config/semantics.js';
import type { GatewayConfig, PoolSettings } from '../config/types.js';
import { withEnvGuard, withHandshakeDir, writeHandshakeScript } from '../php/handshake.js';
import { gatewayIdentity, poolIdentities } from '../php/identity.js';
import { reapStaleMasters } from '../php/master.js';
import { Pool } from '../php/pool.js';
import { AccessLog } from './access-log.js';
import { Metrics } from './admin/metrics.js';
import { AdminServer } from './admin/server.js';
import { BodyMemory } from './http/body.js';
import { DocrootGuard, FileInfoCache } from './http/file-cache.js';
import type { Logger } from '../core/log.js';
import { Pipeline } from './pipeline.js';
import { Router } from './route/router.js';
import { compileErrorPages } from './internal.js';
import { hasRouteCache, routeTableFor } from './route/routes.js';
import { RouteAccess } from './route-access.js';
import { StaticFiles } from './handlers/static.js';
import { http1Options, MainListener, type UpgradeListener } from './http/listener.js';
import { listen, redirectToHttps } from './http/https-redirect.js';
import { Upstreams, WebSocketTunnels } from './handlers/upstream/upstreams.js';
import { loadTls } from './http/tls.js';
import { TrustedProxies } from './http/client-address.js';
import { RateLimiter } from './gates/rate-limit.js';
import { SecurityHeaders } from './filters/security-headers.js';
import { Compression } from './filters/compression.js';
import { phpResponseBuffer } from './filters/response-buffer.js';
import { ResponseCache } from './filters/cache/store.js';
import { CachePurges } from './cache-purge.js';
import type { GatewayStatus, StatusSource } from './http/status.js';
import { VERSION } from './version.js';

/** Beside the pools' sockets: where `phpgate reload` finds the running gateway. */
export const PID_FILE = 'phpgate.pid';

interface Generation {
  readonly config: Readonly<GatewayConfig>;
  readonly pools: Map<string, Pool>;
  readonly pipeline: Pipeline;
  readonly rateLimit: RateLimiter | null;
  readonly cache: ResponseCache | null;
  readonly upstreams: Upstreams | null;
}

export class Gateway implements StatusSource {
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  readonly #metrics: Metrics;
  #config: Readonly<GatewayConfig>;
  #gen: Generation | null = null;
  #server: MainListener | null = null;
  /** The plain-HTTP listener that sends everyone to HTTPS (server.redirect_http_port), or null. */
  #redirect: http.Server | null = null;
  #admin: AdminServer | null = null;
  #draining = false;
  #reloading: Promise<void> | null = null;
  /** Previous generations still finishing their requests after a reload. */
  readonly #retiring = new Set<Promise<unknown>>();
  /** Websockets open through upstreams[], whichever generation opened them: a stop closes them. */
  readonly #tunnels = new WebSocketTunnels();
  /** Request bodies' memory, across reloads: bodies a retiring generation still reads count too. */
  readonly #bodyMemory = new BodyMemory(0);
  /** This process's cache, the instance's other processes, the other instances (cache.purge_redis). */
  readonly #purges: CachePurges;

  /** The bundled example site (no configuration given): PHP may fall back to the gateway's user (php/identity.ts). */
  readonly #exampleSite: boolean;

  constructor(config: Readonly<GatewayConfig>, log: Logger, options: { readonly exampleSite?: boolean } = {}) {
    this.#config = config;
    this.#log = log;
    this.#exampleSite = options.exampleSite === true;
    this.#metrics = new Metrics(this);
    this.#purges = new CachePurges({ apply: (pattern) => this.purgeCache(pattern), log });
  }

  /** The pools now in force. */
  get pools(): ReadonlyMap<string, Pool> {
    return this.#gen?.pools ?? new Map();
  }

  address(): AddressInfo {
    const a = this.#server?.address();
    if (a === null || a === undefined) throw new Error('gateway is not listening');
    return a;
  }

  adminAddress(): AddressInfo | null {
    return this.#admin?.address() ?? null;
  }

  /** Drops cached answers whose path matches the URL pattern; null when no cache is configured. */
  purgeCache(pattern: string): number | null {
    return this.#gen?.cache?.purge(pattern) ?? null;
  }

  status(): GatewayStatus {
    return {
      version: VERSION,
      startedAt: this.#startedAt,
      draining: this.#draining,
      pools: [...this.pools.values()].map((p) => p.stats()),
      connections: this.#server?.connections() ?? { http1: 0, http2: 0, accepted: 0 },
      rateLimit: this.#gen?.rateLimit?.status() ?? null,
      cacheRules: this.#gen?.cache?.labels ?? [],
    };
  }

  async start(): Promise<void> {
    const c = this.#config;
    const tlsMaterial = c.server.tls.cert === '' ? null : loadTls(c.server.tls);
    reapStaleMasters(c.php.socket_dir, this.#log);
    const gen = await this.#startGeneration(c);
    try {
      this.#gen = gen;
      const server = new MainListener(
        {
          tls: tlsMaterial,
          timeouts: c.server.timeouts,
          limits: c.server.limits,
          proxyProtocol: c.server.proxy_protocol,
          trusted: new TrustedProxies(c.server.trusted_proxies),
          log: this.#log,
        },
        this.#onRequest,
      );
      this.#server = server;
      server.setUpgradeHandler(gen.upstreams?.websockets === true ? this.#onUpgrade : null);
      await server.listen(c.server.port, c.server.host);
      if (tlsMaterial !== null && c.server.redirect_http_port > 0) {
        this.#redirect = http.createServer(http1Options(c.server.timeouts, c.server.limits), redirectToHttps(this.address().port, this.#onRequest));
        await listen(this.#redirect, c.server.redirect_http_port, c.server.host);
      }
      this.#admin = new AdminServer({
        config: c.admin,
        source: this,
        metrics: this.#metrics,
        purge: (pattern) => this.#purges.purge(pattern),
        log: this.#log,
      });
      await this.#admin.start();
      this.#purges.configure(c, gen.cache !== null);
    } catch (err) {
      // Pools that started must not outlive a gateway that could not (EADDRINUSE on either port …).
      this.#server?.closeNow();
      this.#redirect?.close();
      await stopPools(gen.pools);
      await gen.rateLimit?.close();
      gen.upstreams?.close();
      throw err;
    }
    fs.writeFileSync(path.join(c.php.socket_dir, PID_FILE), String(process.pid), { mode: 0o600 });
    const a = this.address();
    this.#log.info(
      {
        host: a.address,
        port: a.port,
        admin: this.adminAddress()?.port ?? null,
        docroot: c.php.docroot,
        pools: [...gen.pools.keys()],
        config: c.source,
      },
      'phpgate listening',
    );
  }

  /** Requests go to whichever generation is in force when they arrive. */
  readonly #onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    this.#gen!.pipeline.handle(req, res);
  };

  readonly #onUpgrade: UpgradeListener = (req, socket, head) => this.#gen!.pipeline.upgrade(req, socket, head);

  /**
   * Zero-downtime reload: a new generation (new php-cgi masters: new code, new php.ini) starts beside the old
   * one; once it is ready, new requests go to it, and the old pools stop when their last request is done.
   * If the new one cannot start, the old one keeps serving and the error is thrown for the caller to log.
   * Listener settings (server.host/port/limits, admin.*) need a restart and are kept as they were.
   */
  reload(next: Readonly<GatewayConfig>): Promise<void> {
    // Reloads run one after another, each from the generation the previous one left in force.
    const run = (this.#reloading ?? Promise.resolve()).catch(() => undefined).then(() => this.#reload(next));
    this.#reloading = run;
    const clear = (): void => {
      if (this.#reloading === run) this.#reloading = null;
    };
    run.then(clear, clear);
    return run;
  }

  async #reload(next: Readonly<GatewayConfig>): Promise<void> {
    const old = this.#gen;
    if (old === null || this.#draining) throw new Error('gateway is not running');
    // New certificate files take effect on reload (renewals); the listener itself stays.
    if (next.server.tls.cert !== '' && this.#server?.tls === true) this.#server.setSecureContext(loadTls(next.server.tls));
    for (const key of listenerChanges(old.config, next)) {
      this.#log.warn({ key }, `${key} changed: listener settings take effect on restart, not on reload`);
    }
    const gen = await this.#startGeneration(next, old);
    if (this.#draining) {
      await stopPools(gen.pools); // a stop came while they started: they must not outlive it (nor their own limiter)
      if (gen.rateLimit !== old.rateLimit) await gen.rateLimit?.close();
      gen.upstreams?.close();
      throw new Error('gateway stopped during the reload');
    }
    this.#gen = gen;
    this.#config = next;
    this.#purges.configure(next, gen.cache !== null);
    this.#server?.setUpgradeHandler(gen.upstreams?.websockets === true ? this.#onUpgrade : null);
    this.#log.info({ pools: [...gen.pools.keys()], config: next.source }, 'reloaded: new requests go to the new pools');
    const retiring = this.#retire(old).catch((err: unknown) => this.#log.error({ err }, 'stopping the previous pools failed'));
    this.#retiring.add(retiring);
    void retiring.finally(() => this.#retiring.delete(retiring));
  }

  /** Graceful stop: /readyz 503 and served on for lame_duck_ms, then no new connections, drain_ms, PHP masters stop. */
  async stop(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    const lameDuck = this.#config.server.timeouts.lame_duck_ms;
    if (lameDuck > 0 && this.#server !== null) {
      // /readyz says 503 from now on, the port serves on until the balancer sees it; keep-alive ends after each answer.
      this.#server.lameDuck();
      this.#log.info({ lame_duck_ms: lameDuck }, 'stopping: /readyz answers 503, still serving until the load balancer takes this instance out');
      await new Promise((resolve) => setTimeout(resolve, lameDuck));
    }
    const server = this.#server;
    this.#server = null;
    // Websockets never end by themselves: left open, they would hold the stop for all of drain_ms.
    this.#tunnels.closeAll();
    if (server !== null) await server.close(this.#config.server.timeouts.drain_ms);
    // A reload under way finishes (or stops its new pools itself, seeing #draining); retiring pools stop too.
    await this.#reloading?.catch(() => undefined);
    await Promise.allSettled([...this.#retiring]);
    await this.#admin?.stop();
    const redirect = this.#redirect;
    this.#redirect = null;
    if (redirect !== null) {
      redirect.closeAllConnections();
      await new Promise<void>((resolve) => redirect.close(() => resolve()));
    }
    if (this.#gen !== null) {
      await stopPools(this.#gen.pools);
      await this.#gen.rateLimit?.close();
      this.#gen.upstreams?.close();
    }
    await this.#purges.close();
    fs.rmSync(path.join(this.#config.php.socket_dir, PID_FILE), { force: true });
  }

  async #startGeneration(c: Readonly<GatewayConfig>, previous: Generation | null = null): Promise<Generation> {
    // The default pool (php.*) exists unless the named pools already cover every path.
    const needsDefault = !c.pools.some((p) => p.patterns.some(patternMatchesEverything));
    const specs: Array<{ name: string; settings: PoolSettings }> = c.pools.map((p) => ({ name: p.name, settings: p }));
    if (needsDefault) specs.push({ name: DEFAULT_POOL_NAME, settings: c.php });
    // As root, PHP's users pass through the socket directory's parent (made here) and itself to their own (socketDirFor).
    const root = gatewayIdentity().uid === 0;
    if (root) fs.mkdirSync(path.dirname(c.php.socket_dir), { recursive: true, mode: 0o711 });
    const ids = poolIdentities(specs, { docroot: c.php.docroot, socketDir: c.php.socket_dir, exampleSite: this.#exampleSite, log: this.#log });
    const handshakeScript = writeHandshakeScript(c.php.socket_dir, root);
    const pools = new Map<string, Pool>();
    for (const { name, settings } of specs) {
      pools.set(
        name,
        new Pool({
          name,
          settings: { ...settings, ini: withEnvGuard(withHandshakeDir(settings.ini, c.php.socket_dir), c.php.socket_dir) },
          binary: c.php.binary,
          socketDir: c.php.socket_dir,
          handshakeScript,
          identity: ids.get(name)!,
          log: this.#log,
        }),
      );
    }
    try {
      await Promise.all([...pools.values()].map((p) => p.start()));
    } catch (err) {
      await stopPools(pools);
      throw err;
    }
    const files = new FileInfoCache();
    const guard = new DocrootGuard(files, c.php.docroot, c.static.follow_symlinks);
    const router = new Router({
      php: c.php,
      pools: c.pools,
      static: c.static,
      defaultPool: needsDefault ? DEFAULT_POOL_NAME : c.pools[c.pools.length - 1]!.name,
      files,
      guard,
    });
    // Unchanged rules keep their limiter across a reload: a reload must not hand every client a fresh allowance.
    const sameRules = previous !== null && JSON.stringify(previous.config.rate_limit) === JSON.stringify(c.rate_limit);
    const rateLimit = sameRules ? previous.rateLimit : RateLimiter.create(c.rate_limit, this.#log, this.#metrics);
    this.#metrics.slowMs = c.logging.slow_ms;
    // The cache outlives a reload that leaves cache.* and compression.* alone (as nginx's); a purge drops what is stale.
    const shape = (x: Readonly<GatewayConfig>): string => JSON.stringify([x.cache, x.compression, hasRouteCache(x.routes)]);
    const sameCache = previous !== null && shape(previous.config) === shape(c);
    const compression = new Compression(c.compression);
    const cache = sameCache
      ? previous.cache
      : ResponseCache.create({
          config: c.cache,
          compression: compression.enabled ? compression : null,
          log: this.#log,
          routeCaches: hasRouteCache(c.routes),
        });
    const routes = routeTableFor(c, router, files);
    // Built anew: a reload forgets which targets were marked down.
    const routeProxies = routes === null ? [] : routes.all.filter((l) => l.proxy !== null);
    const upstreams =
      c.upstreams.length + routeProxies.length === 0
        ? null
        : new Upstreams(
            c.upstreams,
            this.#tunnels,
            this.#log,
            routeProxies.map((l) => ({ ...l.proxy!, pattern: '/' })),
          );
    const observers = [this.#metrics, ...(c.logging.access || c.logging.slow_ms > 0 ? [new AccessLog(this.#log, c.logging)] : [])];
    const pipeline = new Pipeline({
      router,
      static: new StaticFiles({ config: c.static, files, guard, log: this.#log }),
      errorPages: compileErrorPages(c.static.error_pages),
      internal: c.static.internal,
      pools,
      poolsNow: () => this.pools,
      maxBodyBytes: Math.floor(c.server.max_body_mb * 1024 * 1024),
      bodyMemory: this.#bodyMemory.resize(c.server.limits.body_memory_mb * 1024 * 1024),
      maxUrlBytes: c.server.limits.url_kb * 1024,
      bodyTimeoutMs: c.server.timeouts.body_ms,
      sendTimeoutMs: c.server.timeouts.send_ms,
      minSendRate: c.server.timeouts.min_send_rate,
      bufferPhp: phpResponseBuffer(c.php, this.#log),
      serverName: c.server.server_name,
      clients: new TrustedProxies(c.server.trusted_proxies),
      rateLimit,
      upstreams,
      routes,
      guards: new RouteAccess(routes?.all ?? [], this.#log),
      routeUpstreams: new Map(routeProxies.map((l, i) => [l, upstreams!.ofRoute(i)])),
      securityHeaders: new SecurityHeaders(c.headers),
      compression,
      cache,
      serverSoftware: c.php.server_software === '' ? `phpgate/${VERSION} (nginx-compatible)` : c.php.server_software,
      requestIdToPhp: c.logging.request_id_to_php,
      observers,
      dispatch: this.#onRequest,
      health: c.admin.health_on_main ? this : null,
      log: this.#log,
    });
    return { config: c, pools, pipeline, rateLimit, cache, upstreams };
  }

  /** The old generation's pools stop once their queued and running requests are done (bounded by drain_ms). */
  async #retire(old: Generation): Promise<void> {
    const deadline = Date.now() + old.config.server.timeouts.drain_ms;
    for (const p of old.pools.values()) await p.drain(Math.max(0, deadline - Date.now()));
    await stopPools(old.pools);
    if (old.rateLimit !== this.#gen?.rateLimit) await old.rateLimit?.close();
    old.upstreams?.retire();
    this.#log.info({ pools: [...old.pools.keys()] }, 'previous pools stopped after reload');
  }
}

async function stopPools(pools: ReadonlyMap<string, Pool>): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.stop()));
}

/** Settings a reload cannot apply to a socket already listening. */
function listenerChanges(a: Readonly<GatewayConfig>, b: Readonly<GatewayConfig>): string[] {
  const out: string[] = [];
  if (a.server.host !== b.server.host) out.push('server.host');
  if (a.server.port !== b.server.port) out.push('server.port');
  if (JSON.stringify(a.server.limits) !== JSON.stringify(b.server.limits)) out.push('server.limits');
  if (a.server.timeouts.header_ms !== b.server.timeouts.header_ms) out.push('server.timeouts.header_ms');
  if (a.server.timeouts.keepalive_ms !== b.server.timeouts.keepalive_ms) out.push('server.timeouts.keepalive_ms');
  if (a.server.proxy_protocol !== b.server.proxy_protocol) out.push('server.proxy_protocol');
  if (a.server.trusted_proxies.join() !== b.server.trusted_proxies.join())
    out.push('server.trusted_proxies (for PROXY headers and connection limits; X-Forwarded-For follows the reload)');
  if (JSON.stringify(a.admin) !== JSON.stringify(b.admin)) out.push('admin');
  if (a.php.socket_dir !== b.php.socket_dir) out.push('php.socket_dir');
  return out;
}

/** error_pages URIs, parsed once (config/ checked they start with "/"). */
