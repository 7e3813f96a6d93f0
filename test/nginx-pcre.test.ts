/**
 * nginx-compat/pcre.ts: nginx location regexes (PCRE2) → JavaScript regexes, exactly or not at all. Every
 * translated pattern here is run against real PCRE2 — the libpcre2-8 nginx links, through PHP's preg_match
 * (test/support/pcre-oracle.ts) — on the same paths, and must agree on whether it matches and on every capture:
 * real-config regexes, the constructs one by one, and seeded random patterns. Refusals must name the construct,
 * and say "PCRE2 rejects" exactly when PCRE2 does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsRegexFor, pcreToJs } from '../nginx-compat/pcre.js';
import { parsePcre } from '../nginx-compat/pcre-parse.js';
import { jsMatches, type OracleCase, pcreOracle } from './support/pcre-oracle.js';

/** Paths as the gateway hands them to routes (decoded, valid UTF-8), with the awkward ones nginx also sees. */
const PATHS = [
  '/',
  '/index.php',
  '/index.php\n',
  '/index.php\n\n',
  '/index.php/',
  '/index.php/extra/path',
  '/INDEX.PHP',
  '/a.phpx',
  '/x.php.txt',
  '/wp-content/uploads/evil.php',
  '/wp-content/uploads/a.PNG',
  '/style.CSS',
  '/app.js.map',
  '/font.woff2',
  '/font.woff',
  '/.well-known/acme-challenge/x',
  '/.env',
  '/.git/config',
  '/a/.htaccess',
  '/config.php',
  '/ext/phpbb/x',
  '/phpbb',
  '/phpbbx',
  '/store/a',
  '/remote.php/dav/files',
  '/ocs/v1.php/cloud',
  '/ocs/v3.php',
  '/updater/index.php',
  '/apps/richdocumentscode_arm64/proxy.php',
  '/apps/richdocumentscode/proxy.php?x',
  '/content/page/x',
  '/kirby/a\n',
  '/site',
  '/é.php',
  '/ä/ö.php',
  '/😀/x.php',
  '/x😀.php',
  '/éwell-known',
  '/aéb',
  '/é',
  '/ab',
  '/\u2028.php',
  '/a\r.php',
  '/à',
  '/index.php/é',
  '/sites/default/files/x.php',
  '/api/v12/users',
  '/api/v1x/users',
  '/aaa/b',
  '/a b/c.php',
  '/1.php',
];

interface Row {
  readonly re: string;
  readonly ci?: boolean;
  /** The JavaScript source expected (documents the translation); omitted: only the behaviour is compared. */
  readonly js?: string;
  readonly flags?: string;
}

/** Regexes from the nginx configurations projects publish (Nextcloud, phpBB, Laravel, Kirby, WordPress, Drupal, Grav, MediaWiki). */
const REAL: Row[] = [
  { re: '\\.php$', js: '\\.php\\n?$' },
  { re: '\\.php(?:$|/)', js: '\\.php(?:(?=\\n?$)|/)' },
  { re: '^/index\\.php(/|$)', js: '^/index\\.php(/|(?=\\n?$))' },
  {
    re: '^/(?:index|remote|public|cron|core\\/ajax\\/update|status|ocs\\/v[12]|updater\\/.+|ocs-provider\\/.+|.+\\/richdocumentscode(_arm64)?\\/proxy)\\.php(?:$|\\/)',
    js: '^/(?:index|remote|public|cron|core/ajax/update|status|ocs/v[12]|updater/[^\\n]+|ocs-provider/[^\\n]+|[^\\n]+/richdocumentscode(_arm64)?/proxy)\\.php(?:(?=\\n?$)|/)',
  },
  { re: '^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/)' },
  { re: '^/(?:\\.|autotest|occ|issue|indie|db_|console)' },
  { re: '\\.(?:css|js|mjs|svg|gif|png|jpg|ico|wasm|tflite|map|ogg|flac)$' },
  { re: '^(.+?\\.php)(/.*)?$', js: '^([^\\n]+?\\.php)(/[^\\n]*)?\\n?$' },
  { re: '^(.+\\.php)(/.+)$' },
  {
    re: '/(config\\.php|common\\.php|cache|files|images/avatars/upload|includes|(?<!ext/)phpbb(?!\\w+)|store|vendor)',
    js: '/(config\\.php|common\\.php|cache|files|images/avatars/upload|includes|(?<!ext/)phpbb(?!\\w+)|store|vendor)',
  },
  { re: '/\\.(?!well-known).*', js: '/\\.(?!well-known)[^\\n]*' },
  { re: '\\.(?:css|js|woff2?|svg|gif|map)$', ci: true, js: '\\.(?:css|js|woff2?|svg|gif|map)\\n?$', flags: 'i' },
  { re: '^/(content|site|kirby)/(.*)$', js: '^/(content|site|kirby)/([^\\n]*)\\n?$' },
  { re: '(?i)^/wp-content/uploads/.*\\.php$', js: '^/wp-content/uploads/[^\\n]*\\.php\\n?$', flags: 'i' },
  { re: '/wp-content/uploads/.*\\.(?:png|jpe?g|gif)$', ci: true },
  { re: '/\\.', js: '/\\.' },
  { re: '/\\.ht' },
  { re: '\\..*/.*\\.php$', js: '\\.[^\\n]*/[^\\n]*\\.php\\n?$' },
  { re: '^/sites/[^/]+/files/.*\\.php$' },
  { re: '^(/[a-z\\-]+)?/system/files/' },
  { re: '/(\\.git|cache|bin|logs|backup|tests)/.*$' },
  { re: '/(LICENSE\\.txt|composer\\.lock|composer\\.json|nginx\\.conf|web\\.config|htaccess\\.txt|\\.htaccess)' },
  { re: '^/(cache|includes|maintenance|languages|serialized|tests|images/deleted)/' },
  { re: '^/w/(index|load|api|thumb|opensearch_desc|rest|img_auth)\\.php$' },
  // A common slip: an unescaped dot. It still matches one byte in nginx, which the translation keeps.
  { re: '/.well-known', js: '/[^\\n\\x80-\\uffff]well-known' },
  { re: '.php$', js: '[^\\n]php\\n?$' },
  // Named groups, in the three spellings; backreferences.
  { re: '^/(?<section>[a-z]+)/(?P<id>\\d+)', js: '^/(?<section>[a-z]+)/(?<id>\\d+)' },
  { re: "^/(?'lang'[a-z]{2})/(.*)$", js: '^/(?<lang>[a-z]{2})/([^\\n]*)\\n?$' },
  { re: '^/(\\w)\\1/', js: '^/(\\w)\\1/' },
  { re: '^/(?P<c>[a-z])(?P=c)' },
  // Atomic groups and possessive repeats.
  { re: '^/api/v\\d++/', js: '^/api/v\\d+(?!\\d)/' },
  { re: '^/(?>[^/]+)/b', js: '^/[^/]+(?![^/])/b' },
  { re: '^/(a|aa)(?>a+|b)(a)/', js: '^/(a|aa)(?=(a+|b))\\2(a)/' },
  // POSIX classes, \Q…\E, scoped and inline options.
  { re: '^/[[:alpha:]]+/[[:digit:]]+', js: '^/[A-Za-z]+/\\d+' },
  { re: '\\Q.php\\E$', js: '\\.php\\n?$' },
  { re: '^/(?i:admin)/x', js: '^/(?:[aA][dD][mM][iI][nN])/x' },
  { re: '^/(?i)admin(?-i)/X' },
  { re: '(?x) ^/ api / (v[0-9]+)  # version\n /', js: '^/api/(v\\d+)/' },
  { re: '^/a{,2}$', js: '^/a\\{,2\\}\\n?$' },
  { re: '\\.php\\z', js: '\\.php$' },
  { re: '\\.php\\Z', js: '\\.php\\n?$' },
  { re: '(?m)^/index\\.php$', js: '(?:^|(?<=\\n)(?!$))/index\\.php(?=\\n|$)' },
  { re: '^/é/(.*)$', ci: true, js: '^/é/([^\\n]*)\\n?$', flags: '' },
  { re: '^/[^/]*\\.(?:php|phtml)\\b' },
  { re: '^/\\S+\\s', js: '^/[^\\t-\\r ]+[\\t-\\r ]' },
];

function check(rows: readonly Row[], subjects: readonly string[]): void {
  const cases: OracleCase[] = rows.map((r) => ({ pattern: r.re, caseless: r.ci === true, subjects }));
  const oracle = pcreOracle(cases);
  rows.forEach((row, i) => {
    const t = pcreToJs(row.re, row.ci === true);
    assert.ok(t.ok, `${row.re}: refused: ${t.ok ? '' : t.reason}`);
    if (row.js !== undefined) assert.equal(t.source, row.js, row.re);
    if (row.flags !== undefined) assert.equal(t.flags, row.flags, row.re);
    const o = oracle[i]!;
    assert.ok(!('error' in o), `${row.re}: PCRE2 rejects it: ${'error' in o ? o.error : ''}`);
    const js = jsMatches(jsRegexFor(row.re, row.ci === true)!, parsePcre(row.re, row.ci === true).groups, subjects);
    subjects.forEach((s, k) => assert.deepEqual(js[k], o.matches[k], `${row.re} (${t.source}) on ${JSON.stringify(s)}`));
  });
}

describe('nginx regexes as JavaScript regexes', () => {
  test('real-config regexes translate and match every path as nginx PCRE2 does, captures included', () => {
    check(REAL, PATHS);
  });

  test('$ and \\Z also match before a final newline (a decoded %0A), \\z does not', () => {
    const re = jsRegexFor('\\.php$', false)!;
    assert.ok(re.test('/x.php\n'));
    assert.ok(!re.test('/x.php\n\n'));
    assert.ok(!re.test('/x.php\r'));
    assert.ok(!jsRegexFor('\\.php\\z', false)!.test('/x.php\n'));
    assert.equal(jsRegexFor('^/(.*)$', false)!.exec('/a\n')?.[1], 'a');
  });

  test('no u flag: \\w, \\b and caseless matching stay ASCII, . and classes see code units', () => {
    for (const row of REAL) {
      const t = pcreToJs(row.re, row.ci === true);
      assert.ok(t.ok && !t.flags.includes('u'), row.re);
    }
    // nginx folds ASCII only: É is not é, ſ is not s, K (Kelvin) is not k.
    check(
      [
        { re: '^/é$', ci: true },
        { re: '^/s$', ci: true, js: '^/s\\n?$', flags: 'i' },
        { re: '^/k\\w$', ci: true },
        { re: '\\bx', ci: true },
      ],
      ['/é', '/É', '/s', '/S', '/ſ', '/kk', '/K', '/\u212a', '/kſ', 'éx', '1x', '_x', 'Ωx'],
    );
  });

  test('constructs one by one agree with PCRE2', () => {
    const rows: Row[] = [
      '^/.$', // one byte: only an ASCII character between two ASCII items
      '^/a.b',
      '[^/]+$',
      '^/(.+)/',
      '\\W+$',
      '\\D\\d',
      '^\\w+$',
      '(?s)^/a.b',
      '\\N+',
      '^/[[:punct:]]',
      '^/[[:space:]]?x',
      '^/[^[:alpha:]]',
      '^/[[:^alpha:]]x',
      '^/[\\w.-]+$',
      '^/[]a]',
      '^/[^]a]x',
      '^/\\x41\\o{101}\\cA?',
      '(?<=/a)b',
      '(?<!\\.)php',
      '(?<=ab|abcd)x',
      '^/(?=a)\\w',
      '^(?!/admin)/\\w+',
      '\\b\\w+\\.php\\b',
      '^/(a)(?:b\\1)?',
      '^/(x)?$',
      '^/(a*)?b',
      '^/(a*)??b',
      '^/(?:(a)|b)(c)',
      '^/(?:(\\w)x)+',
      '^/(?U)a+',
      '^/(?U)a+?',
      '^/(?n)(a)(?<k>b)',
      '^/a++b',
      '^/a?+a',
      '^/a{1,3}+a',
      '^/(?:ab)*+a',
      '^/a*?b',
      '^/.*+$',
      '^/(?>ab|a)b',
      '(?i)^/[^a]',
      '(?i)^/[a-c]+$',
      '^/\\x{1F}',
      '^/a(?#comment)*',
      '^/a\\E+',
    ].map((re) => ({ re }));
    rows.push({ re: '^/[A-Z]', ci: true }, { re: '^/(?-i)A', ci: true }, { re: '^/(é)?x', ci: true });
    check(rows, [
      ...PATHS,
      '/a',
      '/aa',
      '/aab',
      '/ab',
      '/abab',
      '/aaab',
      '/xx',
      '/axbx',
      '/\u0001',
      '/\u001f',
      '/A',
      '/B',
      '/AB',
      '/-._',
      '/]',
      '/b',
      '/bx',
      '/ax',
      '/abcx',
      '/abcdx',
      '/a.b',
      '/a\nb',
      '/c',
      '/ac',
      '/bc',
      '/éx',
      '/x',
      '/1',
      '/ ',
    ]);
  });

  test("group numbers stay nginx's when an emulation adds a group", () => {
    const t = pcreToJs('^/(a)(?>b|bc)(c)/(\\d+)$', false);
    assert.ok(t.ok);
    assert.equal(t.source, '^/(a)(?=(b|bc))\\2(c)/(\\d+)\\n?$');
    assert.deepEqual(t.captureMap, [0, 1, 3, 4]);
    const re = jsRegexFor('^/(a)(?>b|bc)(c)/(\\d+)$', false)!;
    const m = re.exec('/abc/42')!;
    assert.deepEqual([m[1], m[2], m[3]], ['a', 'c', '42']);
    assert.equal('/abc/42'.replace(re, '$1-$2-$3'), 'a-c-42');
    // No group after the emulation: no map.
    const u = pcreToJs('^/(a)(?>b|bc)c', false);
    assert.ok(u.ok && u.captureMap === undefined);
  });

  test('refusals name the construct; "PCRE2 rejects" exactly when PCRE2 does', () => {
    const refused: [string, RegExp, boolean?][] = [
      ['a(?R)?b', /recursion/],
      ['(a)(?1)', /recursion and subroutine/],
      ['(a)(?(1)a|b)', /conditional/],
      ['(?|(a)|(b))', /branch reset/],
      ['a\\Kb', /\\K/],
      ['(*UTF)a', /verbs and start-of-pattern options/],
      ['(?C1)a', /callouts/],
      ['\\p{L}', /Unicode properties/],
      ['\\h', /0xA0/],
      ['\\R', /0x85/],
      ['\\X', /grapheme/],
      ['[é]', /non-ASCII character "é" in a class/],
      ['[\\x80-\\xbf]', /some bytes ≥ 0x80/],
      ['\\xe9', /one byte ≥ 0x80/],
      ['é+', /last byte of "é"/],
      ['^/..$', /\. next to \.: .*counts bytes/],
      ['^/.{2}$', /next to/],
      ['^/(.+).php$', /\.\+ next to \./],
      ['(.)php$', /open start may match one byte/],
      ['^/(?:(a)|b)+$', /group 1 is inside .* not set on every pass/],
      ['^/(a*)*$', /can match the empty string/],
      ['\\1(a)', /before group 1 is set/],
      ['(a)|\\1', /before group 1 is set/],
      ['(a)\\1', /caseless/, true],
      ['(?<=(a){2})b', /repeated inside a lookbehind/],
      ['\\B', /\\B with no ASCII or literal item/],
      ['(?=a)', /a lookaround with no ASCII/],
      ['^/\\10', /backreference or an octal/],
      ['^/\\101', /backreference or an octal/],
      ['^/(?>a.)', /commits to a match that can end inside a UTF-8 character/],
      ['[[:<:]]a', /word start/],
      // PCRE2 10.42 makes the \/* possessive here (an auto-possessification bug), so "//" does not match.
      ['\\/*(?:x)?+\\/', /wrongly makes \\\/\* possessive/],
      ['a*(?>c?|b)a', /wrongly makes a\* possessive/],
      // PCRE2 itself refuses these: nginx would not start.
      ['(?<=a+)b', /PCRE2 rejects.*not fixed length/],
      ['(?<=ab(c|de))x', /PCRE2 rejects.*not fixed length/],
      ['a{2,1}', /PCRE2 rejects.*out of order/],
      ['a{65536}', /PCRE2 rejects.*too big/],
      ['*a', /PCRE2 rejects.*quantifier does not follow/],
      ['a(?i)*', /PCRE2 rejects.*quantifier does not follow/],
      ['a{2}{3}', /PCRE2 rejects.*quantifier does not follow/],
      ['a*?+', /PCRE2 rejects.*quantifier does not follow/],
      ['(a', /PCRE2 rejects.*missing \)/],
      ['a)', /PCRE2 rejects.*unmatched closing/],
      ['[a', /PCRE2 rejects.*missing terminating \]/],
      ['[\\d-z]', /PCRE2 rejects.*invalid range/],
      ['\\x{100}', /PCRE2 rejects.*too large/],
      ['\\i', /PCRE2 rejects.*unrecognized character/],
      ['\\U', /PCRE2 rejects.*does not support/],
      ['\\2(a)', /PCRE2 rejects.*non-existent/],
      ['(?<n>a)(?<n>b)', /PCRE2 rejects.*same name/],
      ['[[:foo:]]', /PCRE2 rejects.*POSIX class/],
      ['\\N{U+41}', /PCRE2 rejects.*UTF mode/],
    ];
    const oracle = pcreOracle(refused.map(([re, , ci]) => ({ pattern: re, caseless: ci === true, subjects: ['/a'] })));
    // The auto-possessification bug, as nginx's PCRE2 shows it: "//" should match \/*(?:x)?+\/ and does not.
    assert.deepEqual(pcreOracle([{ pattern: '\\/*(?:x)?+\\/', caseless: false, subjects: ['//', 'x//'] }]), [
      { matches: [null, { groups: [], named: {} }] },
    ]);
    refused.forEach(([re, reason, ci], i) => {
      const t = pcreToJs(re, ci === true);
      assert.ok(!t.ok, `${re} should be refused, got ${t.ok ? t.source : ''}`);
      assert.match(t.reason, reason, re);
      assert.equal(jsRegexFor(re, ci === true), null);
      const o = oracle[i]!;
      const rejects = 'error' in o && o.error.includes('Compilation failed');
      assert.equal(t.reason.startsWith('PCRE2 rejects'), rejects, `${re}: ${t.reason} / PCRE2: ${'error' in o ? o.error : 'compiles'}`);
    });
  });

  test('seeded random patterns: whatever is translated agrees with PCRE2 on random paths', () => {
    const rnd = mulberry32(20240611);
    const cases: OracleCase[] = [];
    for (let i = 0; i < 1200; i++) {
      const pattern = rnd() < 0.5 ? realistic(rnd) : random(rnd, 0);
      cases.push({ pattern, caseless: rnd() < 0.3, subjects: Array.from({ length: 30 }, () => subject(rnd)) });
    }
    const oracle = pcreOracle(cases);
    let translated = 0;
    cases.forEach((c, i) => {
      const t = pcreToJs(c.pattern, c.caseless);
      const o = oracle[i]!;
      if (!t.ok) {
        // Refused for another reason first is fine; claiming PCRE2 rejects what it compiles is not.
        if (t.reason.startsWith('PCRE2 rejects'))
          assert.ok('error' in o && o.error.includes('Compilation failed'), `${c.pattern}: ${t.reason}, but PCRE2 compiles it`);
        return;
      }
      assert.ok(!('error' in o), `${c.pattern} translated, but PCRE2 rejects it: ${'error' in o ? o.error : ''}`);
      translated++;
      const js = jsMatches(jsRegexFor(c.pattern, c.caseless)!, parsePcre(c.pattern, c.caseless).groups, c.subjects);
      c.subjects.forEach((s, k) =>
        assert.deepEqual(js[k], o.matches[k], `${c.pattern}${c.caseless ? ' (caseless)' : ''} → ${t.source}/${t.flags} on ${JSON.stringify(s)}`),
      );
    });
    assert.ok(translated > 400, `only ${translated} of ${cases.length} translated`);
  });

  test('bad input never throws', () => {
    assert.ok(pcreToJs('('.repeat(250) + 'a' + ')'.repeat(250), false).ok);
    assert.match((pcreToJs('('.repeat(251) + 'a' + ')'.repeat(251), false) as { reason: string }).reason, /PCRE2 rejects.*too deeply nested/);
    for (const re of [
      '('.repeat(100_000),
      '(?:a|b)*'.repeat(2000),
      'a'.repeat(5000),
      '',
      '\\',
      '(',
      ')',
      '[',
      '[]',
      '(?',
      '(?<',
      '(?P',
      '\\k',
      '\\g',
      '\\x{',
      '\\c',
      '{',
      'a{',
      '(?#',
      '\\Q',
      '[[:',
      '\uD800',
      '😀',
    ]) {
      const t = pcreToJs(re, false);
      assert.equal(typeof t.ok, 'boolean', re);
    }
  });
});

function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;

const ATOMS = ['a', 'b', 'A', '/', '\\.', '.', 'é', '😀', '\\n', '[ab]', '[^/]', '[a-c]', '[[:alpha:]]', '\\d', '\\w', '\\s', '\\W', '\\S'];
const MORE = ['\\D', '[^a]', 'x', '\\/', '[[:^alpha:]]', '\\N', '[\\x80-\\xff]', '\\x41', '\\1', 'php', '(?i)', '(?-i)', '\\Qa.\\E', '(?s).'];
const QUANTS = ['', '', '', '*', '+', '?', '{2}', '{1,2}', '{0,1}', '*?', '+?', '??', '*+', '++', '?+', '{2,}'];
const ANCHORS = ['^', '$', '\\z', '\\Z', '\\A', '\\b', '\\B', '(?m)^', '(?m)$'];
const OPENS = ['(', '(?:', '(?>', '(?=', '(?!', '(?<=', '(?<!', '(?i:', '('];

function random(rnd: () => number, depth: number): string {
  let s = '';
  for (let i = 1 + Math.floor(rnd() * 4); i > 0; i--) {
    const r = rnd();
    if (r < 0.55 || depth > 2) s += pick(rnd, [...ATOMS, ...MORE]) + pick(rnd, QUANTS);
    else if (r < 0.7) s += pick(rnd, ANCHORS);
    else {
      const open = pick(rnd, OPENS);
      const body = random(rnd, depth + 1) + (rnd() < 0.4 ? '|' + random(rnd, depth + 1) : '');
      s += open + body + ')' + (/^\(\?<?[=!]/.test(open) ? '' : pick(rnd, QUANTS));
    }
  }
  return s;
}

const PIECES = ['^/', '^', '/', '\\.php', '$', '(?:$|/)', '(/|$)', '([^/]+)', '(.*)', '(.+)', '.*', '.+', '[^/]*', '(?:index|admin)'];
const PIECES2 = ['(?<name>[a-z]+)', '(?i:php)', '\\.(?:css|js)', '(?!x)', '(?<!a)', '(?<=/)', '(\\d+)', '\\w+', '(?:/(.*))?', '(_a)?'];
const PIECES3 = ['\\1', '(?>[^/]+)', '[^/]++', 'é', '\\z', '\\b', 'a{2,3}', '[[:alpha:]]+', '.', '\\Z'];

function realistic(rnd: () => number): string {
  let s = '';
  for (let i = 1 + Math.floor(rnd() * 6); i > 0; i--) s += pick(rnd, [...PIECES, ...PIECES2, ...PIECES3]);
  return s;
}

const LETTERS = ['/', '/', 'php', '.php', 'index', 'é', 'a', 'b', 'A', 'B', '/', '.', '\n', 'É', '😀', ' ', '1', '_', 'x', '\r', '\u2028', 'à', 'c'];

function subject(rnd: () => number): string {
  let s = '';
  for (let n = Math.floor(rnd() * 7); n > 0; n--) s += rnd() < 0.15 ? String.fromCharCode(1 + Math.floor(rnd() * 127)) : pick(rnd, LETTERS);
  return s;
}

describe('nginx regexes over raw request values (one character per byte)', () => {
  test('what PCRE2 counts in bytes, the JavaScript regex counts in latin1 characters: the same matches and captures', () => {
    const patterns: [string, boolean][] = [
      ['wp-.*.php', true],
      ['(.)(.*)', false],
      ['^/(.{2})x', false],
      ['comment_author|wordpress_[a-f0-9]+|wordpress_logged_in', true],
      ['[^/]+.php$', false],
      ['^(.+?)=(.+)$', false],
    ];
    const subjects = ['/wp-éx.php', 'é', '/éx', '/ééx', 'wordpress_LOGGED_in=1', 'caf\u00e9.php', '😀=é', 'a.php\n', 'x'];
    const cases = patterns.map(([pattern, caseless]) => ({ pattern, caseless, subjects }));
    const oracle = pcreOracle(cases);
    patterns.forEach(([pattern, caseless], i) => {
      const r = pcreToJs(pattern, caseless, 'bytes');
      assert.ok(r.ok, `${pattern}: ${r.ok ? '' : r.reason}`);
      if (!r.ok) return;
      const re = new RegExp(r.source, r.flags);
      const o = oracle[i]!;
      assert.ok('matches' in o, pattern);
      if (!('matches' in o)) return;
      subjects.forEach((s, j) => {
        const m = re.exec(Buffer.from(s, 'utf8').toString('latin1'));
        const js = m === null ? null : m.slice(1).map((g) => (g === undefined ? null : Buffer.from(g, 'latin1').toString('utf8')));
        const want = o.matches[j] === null ? null : o.matches[j]!.groups;
        assert.deepEqual(js, want, `${pattern} on ${JSON.stringify(s)}`);
      });
    });
    assert.equal(pcreToJs('é', false, 'bytes').ok, false, 'a non-ASCII pattern over raw bytes is refused');
  });
});
