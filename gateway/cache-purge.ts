/**
 * Where a cache purge goes: this process's cache, the other processes of this instance (server.processes, through
 * the primary), and every other instance sharing a Redis (cache.purge_redis), over one Pub/Sub channel.
 *
 * - Every gateway process subscribes itself, so a purge from another instance reaches each process once, without
 *   the primary. A message carries the sending instance's id (one id for all its processes): the instance that
 *   sent it ignores it, since its own processes already had it through the primary.
 * - Only purges travel on the channel, and a message is checked as the admin endpoint checks a purge (size, shape,
 *   the URL pattern rule): anything else is dropped.
 * - Pub/Sub is fire-and-forget: a purge sent while an instance is not subscribed never reaches it. So each time the
 *   subscription is (re)made, the local cache is cleared whole: a miss costs one render, a stale page after a
 *   purge is what must not happen.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { INVALID, urlPattern } from '../config/checks.js';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { REDIS_OPTIONS, redactUrl } from './gates/redis-link.js';
import { broadcastPurge, instanceIdOfCluster } from './processes.js';

/** What a purge did: how many answers this process dropped, and which instances it reached. */
export interface PurgeOutcome {
  readonly purged: number;
  /** "all" (published on Redis), or "local only: <why>". */
  readonly instances: string;
  /** With "all": how many gateway processes (of every instance, this one's included) were subscribed. */
  readonly subscribers?: number;
}

export interface SharedPurgeSettings {
  /** redis:// URL. */
  readonly url: string;
  readonly channel: string;
}

const CHANNEL_PREFIX = 'phpgate:cache-purge:';
/** A purge pattern comes from one admin request line (node's 16 KiB header limit); the JSON around it is small. */
const MAX_MESSAGE_BYTES = 17 * 1024;
const MAX_INSTANCE_ID_CHARS = 64;
/** A subscription that answers no PING is dead even if TCP has not noticed: reconnect (and so clear) then. */
const PING_INTERVAL_MS = 10_000;
/** Malformed messages are logged at most this often (whoever can publish on Redis must not flood the log). */
const DROP_WARN_INTERVAL_MS = 60_000;

export const NOT_SHARED = 'local only: purges are not shared (no cache.purge_redis)';
const REDIS_UNAVAILABLE = 'local only: redis unavailable';
const TOO_LONG = 'local only: pattern too long to send';

/**
 * cache.purge_redis resolved: "" follows rate_limit.store when that is a Redis. The channel, unless named, carries
 * the URL's database number: Pub/Sub ignores databases, and deployments kept apart by database must stay apart.
 */
export function sharedPurgeSettings(c: Readonly<GatewayConfig>): SharedPurgeSettings | null {
  const setting = c.cache.purge_redis;
  const url = setting === 'off' ? null : setting !== '' ? setting : /^rediss?:\/\//.test(c.rate_limit.store) ? c.rate_limit.store : null;
  if (url === null) return null;
  return { url, channel: c.cache.purge_channel !== '' ? c.cache.purge_channel : CHANNEL_PREFIX + database(url) };
}

function database(url: string): string {
  const db = URL.canParse(url) ? new URL(url).pathname.slice(1) : '';
  return /^\d+$/.test(db) ? String(Number(db)) : '0';
}

/** A message as it travels. */
export function encodePurge(from: string, pattern: string): string {
  return JSON.stringify({ purge: pattern, from });
}

/** A message from Redis, checked as strictly as an admin request; null: not a purge we accept. */
export function decodePurge(raw: string): { readonly from: string; readonly pattern: string } | null {
  if (Buffer.byteLength(raw) > MAX_MESSAGE_BYTES) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    void err; // not JSON: not one of ours, dropped by the caller
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.keys(v).length !== 2) return null;
  const { purge, from } = v as Record<string, unknown>;
  if (typeof from !== 'string' || from === '' || from.length > MAX_INSTANCE_ID_CHARS) return null;
  if (typeof purge !== 'string' || urlPattern.parse(purge) === INVALID) return null;
  return { from, pattern: purge };
}

const load = createRequire(import.meta.url);

/** The Redis side: one subscriber connection per process, and a publisher where the admin listener runs. */
class PurgeChannel {
  readonly settings: SharedPurgeSettings;
  readonly #instance: string;
  readonly #apply: (pattern: string) => number | null;
  readonly #log: Logger;
  readonly #where: string;
  readonly #subscriber: Redis;
  readonly #publisher: Redis | null;
  readonly #pinger: NodeJS.Timeout;
  #state: 'connecting' | 'subscribed' | 'down' = 'connecting';
  #closing = false;
  #dropped = 0;
  #dropWarnedAt = 0;

  constructor(o: { settings: SharedPurgeSettings; instance: string; publish: boolean; apply: (pattern: string) => number | null; log: Logger }) {
    this.settings = o.settings;
    this.#instance = o.instance;
    this.#apply = o.apply;
    this.#log = o.log;
    this.#where = redactUrl(o.settings.url);
    const { Redis } = load('ioredis') as typeof import('ioredis');
    // Subscribed again by hand on each 'ready' (ioredis's own resubscription is not awaited): the cache is cleared
    // only once Redis has confirmed the subscription, so no purge falls between the two.
    this.#subscriber = new Redis(o.settings.url, { ...REDIS_OPTIONS, autoResubscribe: false, connectionName: 'phpgate-purge' });
    this.#subscriber.on('ready', () => this.#subscribe());
    this.#subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    this.#subscriber.on('error', (err: Error) => this.#down(err.message));
    this.#subscriber.on('close', () => this.#down('connection closed'));
    this.#publisher = o.publish ? new Redis(o.settings.url, { ...REDIS_OPTIONS, connectionName: 'phpgate-purge-publish' }) : null;
    // Its failures are the subscriber's too (same server), logged there once; a publish that fails says so itself.
    this.#publisher?.on('error', (err: Error) =>
      this.#log.debug({ err: err.message, redis: this.#where }, 'cache purge publisher: connection error'),
    );
    this.#pinger = setInterval(() => this.#ping(), PING_INTERVAL_MS).unref();
  }

  async publish(pattern: string): Promise<{ instances: string; subscribers?: number }> {
    if (this.#publisher === null) return { instances: NOT_SHARED };
    const message = encodePurge(this.#instance, pattern);
    if (Buffer.byteLength(message) > MAX_MESSAGE_BYTES) return { instances: TOO_LONG };
    try {
      const subscribers = await this.#publisher.publish(this.settings.channel, message);
      return { instances: 'all', subscribers };
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message, redis: this.#where, channel: this.settings.channel, pattern },
        'cache purge done here but not sent to the other instances: Redis unavailable',
      );
      return { instances: REDIS_UNAVAILABLE };
    }
  }

  #subscribe(): void {
    this.#subscriber.subscribe(this.settings.channel).then(
      () => {
        if (this.#closing) return;
        const was = this.#state;
        this.#state = 'subscribed';
        const cleared = this.#apply('*') ?? 0;
        const fields = { redis: this.#where, channel: this.settings.channel, cleared };
        if (was === 'down') this.#log.warn(fields, 'cache purge channel back: local cache cleared (purges sent meanwhile did not reach it)');
        else this.#log.info(fields, 'cache purges shared through Redis');
      },
      (err: unknown) => {
        // An ACL that refuses SUBSCRIBE, a connection lost meanwhile: try again on the next connection.
        this.#down(`SUBSCRIBE failed: ${(err as Error).message}`);
        if (!this.#closing) this.#subscriber.disconnect(true);
      },
    );
  }

  #onMessage(channel: string, raw: string): void {
    if (channel !== this.settings.channel) return;
    const m = decodePurge(raw);
    if (m === null) {
      this.#dropped++;
      const now = Date.now();
      if (now - this.#dropWarnedAt >= DROP_WARN_INTERVAL_MS) {
        this.#dropWarnedAt = now;
        this.#log.warn({ channel, dropped: this.#dropped }, 'cache purge channel: dropped a message that is not a valid purge');
      }
      return;
    }
    // Our own: this instance's processes had it already, through the primary.
    if (m.from === this.#instance) return;
    const purged = this.#apply(m.pattern);
    this.#log.info({ pattern: m.pattern, purged, from: m.from }, 'cache purged by another instance');
  }

  #down(reason: string): void {
    if (this.#closing || this.#state === 'down') return;
    const was = this.#state;
    this.#state = 'down';
    this.#log.warn(
      { redis: this.#where, channel: this.settings.channel, reason },
      was === 'subscribed'
        ? 'cache purge channel lost: purges from other instances are missed until it is back (the local cache is cleared then)'
        : 'cache purge channel unreachable: purges from other instances are missed until it connects (the local cache is cleared then)',
    );
  }

  #ping(): void {
    if (this.#state !== 'subscribed' || this.#subscriber.status !== 'ready') return;
    this.#subscriber.ping().catch((err: unknown) => {
      if (this.#closing) return;
      this.#down(`PING failed: ${(err as Error).message}`);
      this.#subscriber.disconnect(true);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#pinger);
    await Promise.all([quit(this.#subscriber), this.#publisher === null ? undefined : quit(this.#publisher)]);
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect(); // also stops reconnecting
    return;
  }
  try {
    await client.quit();
  } catch (err) {
    void err; // QUIT is a courtesy to the server; the connection is dropped either way
    client.disconnect();
  }
}

/** One gateway process's purges: local, then the sibling processes, then the other instances. */
export class CachePurges {
  readonly #apply: (pattern: string) => number | null;
  readonly #instance: string;
  readonly #log: Logger;
  #channel: PurgeChannel | null = null;

  constructor(o: { apply: (pattern: string) => number | null; log: Logger }) {
    this.#apply = o.apply;
    // Each Gateway alone is an instance (tests run several in one process); a cluster's processes share the primary's id.
    this.#instance = instanceIdOfCluster() ?? randomUUID();
    this.#log = o.log;
  }

  /** null when no cache is configured. */
  async purge(pattern: string): Promise<PurgeOutcome | null> {
    const purged = this.#apply(pattern);
    if (purged === null) return null;
    broadcastPurge(pattern);
    if (this.#channel === null) return { purged, instances: NOT_SHARED };
    return { purged, ...(await this.#channel.publish(pattern)) };
  }

  /**
   * Follows the configuration in force (at start and after each reload): a channel while there is a cache and a
   * Redis to share purges through; a changed URL or channel is a new subscription (and so a cleared cache).
   */
  configure(c: Readonly<GatewayConfig>, hasCache: boolean): void {
    const settings = hasCache ? sharedPurgeSettings(c) : null;
    const current = this.#channel?.settings ?? null;
    if (current?.url === settings?.url && current?.channel === settings?.channel) return;
    void this.#closeChannel();
    if (settings === null) return;
    this.#channel = new PurgeChannel({ settings, instance: this.#instance, publish: c.admin.port !== 0, apply: this.#apply, log: this.#log });
  }

  async close(): Promise<void> {
    await this.#closeChannel();
  }

  #closeChannel(): Promise<void> {
    const channel = this.#channel;
    this.#channel = null;
    return channel === null
      ? Promise.resolve()
      : channel.close().catch((err: unknown) => this.#log.warn({ err }, 'closing the cache purge channel failed'));
  }
}
