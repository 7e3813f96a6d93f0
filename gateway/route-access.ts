/**
 * The access phase of routes (nginx's allow/deny and auth_basic, `satisfy all`): each route's rules compiled once at
 * load (gates/access.ts, gates/basic-auth.ts), checked for a request that reached the route. An address refused is
 * 403 before credentials are asked for, as nginx's access module runs first.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../core/log.js';
import { compileAccess, type AccessList } from './gates/access.js';
import { BasicAuth } from './gates/basic-auth.js';
import type { ClientInfo } from './http/client-address.js';
import type { Location } from './route/locations.js';
import type { AccessGuards, AccessVerdict } from './route/routes.js';

const FORBIDDEN: AccessVerdict = { status: 403 };

export class RouteAccess implements AccessGuards {
  readonly #lists = new Map<object, AccessList>();
  readonly #auth = new Map<string, BasicAuth>();
  readonly #byRoute = new Map<object, BasicAuth>();

  constructor(locations: readonly Location[], log: Logger) {
    for (const l of locations) {
      if (l.access !== null && !this.#lists.has(l.access)) {
        this.#lists.set(l.access, compileAccess(l.access.map((r) => (r.allow ? { allow: r.who } : { deny: r.who }))));
      }
      const a = l.authBasic;
      if (a !== null && !this.#byRoute.has(a)) {
        // One reader per file and realm: routes sharing a file share its remembered logins.
        const key = `${a.realm}\n${a.user_file}`;
        let auth = this.#auth.get(key);
        if (auth === undefined) this.#auth.set(key, (auth = new BasicAuth({ realm: a.realm, user_file: a.user_file, log })));
        this.#byRoute.set(a, auth);
      }
    }
  }

  check(loc: Location, req: IncomingMessage, client: ClientInfo): AccessVerdict {
    if (loc.access !== null && !this.#lists.get(loc.access)!.allows(client.address)) return FORBIDDEN;
    if (loc.authBasic === null) return null;
    const auth = this.#byRoute.get(loc.authBasic)!;
    const header = req.headers.authorization;
    const result = auth.check(header);
    if (result instanceof Promise) return { wait: result };
    if (result.ok) return null;
    return result.status === 401 ? { status: 401, challenge: auth.challenge } : { status: result.status };
  }
}
