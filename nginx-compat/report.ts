/**
 * What the import did with each directive. Every directive in the imported scope ends up handled: translated
 * silently, translated or skipped with a note, or reported as a warning (not translated). Nothing is dropped
 * without a line in the report.
 */
import type { Directive } from './parse.js';

export const WarningKind = {
  /** Translated, or not needed because phpgate already behaves so: worth knowing, nothing to do. */
  Note: 'note',
  /** Not translated, or translated with a different behaviour: review it. */
  Warning: 'warning',
} as const;
export type WarningKind = (typeof WarningKind)[keyof typeof WarningKind];

export interface Warning {
  readonly kind: WarningKind;
  readonly file: string;
  readonly line: number;
  /** The directive as written (name and arguments, shortened). */
  readonly directive: string;
  readonly message: string;
}

const DIRECTIVE_TEXT_MAX = 72;

function directiveText(d: Directive): string {
  const args = d.args.map((a) => (a === '' || /[\s;{}"']/.test(a) ? JSON.stringify(a) : a));
  const text = [d.name, ...args].join(' ');
  return text.length > DIRECTIVE_TEXT_MAX ? `${text.slice(0, DIRECTIVE_TEXT_MAX - 1)}…` : text;
}

/** `file:line: directive — message`, one line. */
export function formatWarning(w: Warning): string {
  return `${w.file}:${w.line}: ${w.directive} — ${w.message}`.replace(/[\r\n]+/g, ' ');
}

export class Report {
  readonly #entries: { readonly w: Warning; readonly order: number; readonly seq: number }[] = [];
  readonly #handled = new Set<Directive>();
  /** What was said about each directive: a directive shared by several routes (inherited) is reported once. */
  readonly #said = new Map<Directive, Set<string>>();
  readonly #order: ReadonlyMap<Directive, number>;

  /** `order`: each directive's position in the configuration as read (includes expanded), for sorting. */
  constructor(order: ReadonlyMap<Directive, number>) {
    this.#order = order;
  }

  note(d: Directive, message: string): void {
    this.#add(WarningKind.Note, d, message);
  }

  warn(d: Directive, message: string): void {
    this.#add(WarningKind.Warning, d, message);
  }

  /** Translated with nothing worth saying. */
  done(d: Directive): void {
    this.#handled.add(d);
  }

  /** The directive and everything inside it: covered by one report entry on the block. */
  doneTree(d: Directive): void {
    this.#handled.add(d);
    for (const c of d.children ?? []) this.doneTree(c);
  }

  isHandled(d: Directive): boolean {
    return this.#handled.has(d);
  }

  /** In configuration order; entries about one directive in the order they were made. */
  list(): Warning[] {
    return [...this.#entries].sort((a, b) => a.order - b.order || a.seq - b.seq).map((e) => e.w);
  }

  #add(kind: WarningKind, d: Directive, message: string): void {
    this.#handled.add(d);
    const said = this.#said.get(d) ?? new Set<string>();
    if (said.has(`${kind} ${message}`)) return;
    said.add(`${kind} ${message}`);
    this.#said.set(d, said);
    const w: Warning = { kind, file: d.file, line: d.line, directive: directiveText(d), message };
    this.#entries.push({ w, order: this.#order.get(d) ?? Number.MAX_SAFE_INTEGER, seq: this.#entries.length });
  }
}
