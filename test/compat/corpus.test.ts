/**
 * The corpus (test/compat/corpus/): real nginx configurations published by PHP projects, run by nginx + php-fpm
 * and, imported with importNginx, by phpgate; every request of each site's site.json is sent to both and the
 * answers compared (./corpus.ts). The goal: an imported real-world site behaves as under nginx, at least 95% of
 * the requests alike and none unsafe (phpgate serving or running what nginx refuses, or another script).
 *
 * One test per site (its rate as a diagnostic; it fails only if the harness cannot run the site), then the
 * overall assertions, and that every request that still differs is named by a warning of its site's import report. CORPUS_REPORT=1 prints each site's differences; `node --import tsx test/compat/corpus.ts
 * [site]` does the same from the command line.
 *
 * nginx + php-fpm missing: skipped locally, but failing when CI is set (CI installs them).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nginxFpmMissing } from '../support/nginx-fpm.js';
import { differenceKinds, fullReport, kindOf, loadSites, rates, runSite, siteTable, unnamedDifferences, type SiteResult } from './corpus.js';

const MIN_SAME = 0.95;
const report = process.env['CORPUS_REPORT'] === '1';
const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

describe('corpus: published nginx configs of PHP projects, imported, behave as under nginx + php-fpm', () => {
  const sites = loadSites();
  const results: SiteResult[] = [];
  let unavailable: string | undefined;

  before(() => {
    unavailable = nginxFpmMissing('the corpus');
  });

  for (const site of sites) {
    it(`${site.name} (${site.requests.length} requests)`, { timeout: 60_000 }, async (t) => {
      if (unavailable !== undefined) return t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
      const r = await runSite(site);
      results.push(r);
      const { same, total, unsafe } = rates([r]);
      t.diagnostic(`${same}/${total} same (${pct(same / total)}), ${unsafe} unsafe${r.failure === undefined ? '' : `; ${r.failure}`}`);
      if (report) process.stdout.write(`${siteTable(r)}\n\n`);
    });
  }

  it(`overall: at least ${pct(MIN_SAME)} of the requests alike, none unsafe`, (t) => {
    if (unavailable !== undefined) return t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
    assert.equal(results.length, sites.length, 'every site ran');
    const { total, same, unsafe, sameRate } = rates(results);
    if (report) process.stdout.write(`${fullReport(results).split('\nRates:\n')[1] ?? ''}\n`);
    const perSite = results.map((r) => {
      const x = rates([r]);
      return `  ${r.site}: ${pct(x.sameRate)} same, ${x.unsafe} unsafe`;
    });
    const unsafeLines = results.flatMap((r) =>
      r.outcomes
        .filter((o) => o.verdict === 'unsafe')
        .map((o) => `  ${r.site}: ${o.req.method ?? 'GET'} ${o.req.path} — ${kindOf(o)} (${o.req.why})`),
    );
    const kinds = differenceKinds(results)
      .slice(0, 8)
      .map(([k, n]) => `  ${n} × ${k}`);
    const shown = 20;
    const message = [
      `${same}/${total} requests alike (${pct(sameRate)}, want ≥ ${pct(MIN_SAME)}), ${unsafe} unsafe (want 0); CORPUS_REPORT=1 for the tables`,
      ...perSite,
      'most common differences:',
      ...kinds,
      ...(unsafe === 0 ? [] : ['unsafe:', ...unsafeLines.slice(0, shown), ...(unsafe > shown ? [`  … and ${unsafe - shown} more`] : [])]),
    ].join('\n');
    assert.ok(unsafe === 0 && sameRate >= MIN_SAME, message);
  });

  it('every difference is named in the import report', (t) => {
    if (unavailable !== undefined) return t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
    assert.deepEqual(unnamedDifferences(results), []);
  });
});
