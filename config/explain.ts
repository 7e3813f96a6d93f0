/**
 * `phpgate check --explain`: how a configuration routes requests, as the routes nginx would search — the `routes:`
 * given (in search order: exact, prefixes longest first, regexes in list order), or, without them, the routes the
 * global keys amount to.
 */
import type { GatewayConfig, RouteConfig } from './types.js';

function actions(r: RouteConfig): string {
  const out: string[] = [];
  if (r.internal) out.push('internal');
  if (r.rewrite.length > 0) out.push(`rewrite ×${r.rewrite.length}`);
  if (r.deny !== null) out.push(`deny ${r.deny}`);
  if (r.access !== null) out.push(`access [${r.access.map((a) => `${a.allow ? 'allow' : 'deny'} ${a.who}`).join(', ')}]`);
  if (r.auth_basic !== null) out.push(`auth_basic "${r.auth_basic.realm}"`);
  if (r.return !== null) out.push(`return ${r.return.status}`);
  if (r.root !== null) out.push(`root ${r.root}`);
  if (r.alias !== null) out.push(`alias ${r.alias}`);
  if (r.index !== null) out.push(`index [${r.index.join(', ')}]`);
  if (r.try_files !== null) out.push(`try_files [${r.try_files.join(', ')}]`);
  if (r.php !== null) {
    const p = r.php;
    out.push(
      `php${p.script !== null ? ` script ${p.script}` : ''}${p.split_path_info !== null ? ` split ${p.split_path_info}` : ' (no PATH_INFO)'}${p.pool !== null ? ` pool ${p.pool}` : ''}`,
    );
  }
  if (r.proxy !== null) out.push(`proxy ${r.proxy.targets.join(' ')}`);
  if (r.add_header !== null) out.push(`add_header ${r.add_header.map((h) => h.name).join(', ')}`);
  if (r.expires !== null) out.push(`expires ${r.expires}`);
  if (r.cache !== null) out.push(`cache ${r.cache.ttl_s}s${r.cache.bypass.length > 0 ? ' with bypass' : ''}`);
  if (out.length === 0 || (r.php === null && r.proxy === null && r.return === null && r.deny === null)) out.push('static files');
  return out.join('; ');
}

function level(routes: readonly RouteConfig[], indent: string, lines: string[]): void {
  const order = [
    ...routes.filter((r) => r.match.kind === 'exact'),
    ...routes.filter((r) => r.match.kind === 'prefix').sort((a, b) => lengthOf(b) - lengthOf(a)),
    ...routes.filter((r) => r.match.kind === 'regex'),
    ...routes.filter((r) => r.match.kind === 'named'),
  ];
  for (const r of order) {
    lines.push(`${indent}${r.text.padEnd(Math.max(24 - indent.length, 8))}  ${actions(r)}`);
    level(r.routes, indent + '  ', lines);
  }
}

function lengthOf(r: RouteConfig): number {
  return r.match.kind === 'prefix' ? r.match.path.length : 0;
}

export function explainRouting(c: GatewayConfig): string {
  const lines: string[] = [];
  const refused = ['dotfiles (except /.well-known/)', 'backslashes', ...c.static.deny].join(', ');
  lines.push(`refused before any route (${c.static.deny_status}): ${refused}`);
  if (c.upstreams.length > 0) lines.push(`upstreams, matched first: ${c.upstreams.map((u) => `${u.pattern} → ${u.targets.join(' ')}`).join('; ')}`);
  if (c.rewrite.length > 0) lines.push(`server-level rewrite script: ${c.rewrite.length} steps`);
  if (c.routes.length > 0) {
    lines.push('routes, in the order nginx searches them (exact, prefixes longest first, regexes in order; nested under their parent):');
    level(c.routes, '  ', lines);
  } else {
    lines.push('no routes: the global keys route as these routes would:');
    lines.push(`  /                        try_files [${c.php.try_files.join(', ')}]; index [${c.php.index.join(', ')}]`);
    lines.push('  ~ [^/]\\.php(/|$)         php split ^(.+?\\.php)(/.*)$ (an existing .php file runs, else 404)');
  }
  for (const p of c.pools) lines.push(`pool ${p.name}: scripts for ${p.patterns.join(', ')} (when a route names no pool)`);
  for (const r of c.cache.rules) lines.push(`cache rule ${r.pattern}: ${r.ttl_s}s (routes without their own cache)`);
  return lines.join('\n') + '\n';
}
