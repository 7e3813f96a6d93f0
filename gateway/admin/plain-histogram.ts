/**
 * A Prometheus histogram with one label, counted in plain typed arrays and written out as exposition text.
 * prom-client's own Histogram converts, validates and hashes its labels on every observe(): about a tenth of
 * the gateway's CPU for a PHP hello. Here a request costs a short scan over the bucket bounds.
 */

export class PlainHistogram {
  readonly #name: string;
  readonly #help: string;
  readonly #label: string;
  /** Upper bounds, ascending; +Inf is implied. */
  readonly #bounds: Float64Array;
  readonly #series = new Map<string, Series>();

  constructor(name: string, help: string, label: string, bounds: readonly number[]) {
    this.#name = name;
    this.#help = help;
    this.#label = label;
    this.#bounds = Float64Array.from(bounds);
  }

  /** The series of one label value, kept by the caller: observe() on it does no lookup at all. */
  series(labelValue: string): Series {
    let s = this.#series.get(labelValue);
    if (s === undefined) {
      s = new Series(this.#bounds);
      this.#series.set(labelValue, s);
    }
    return s;
  }

  /** `# HELP`, `# TYPE` and every series observed at least once: cumulative `_bucket` lines (le first, as prom-client writes them), `_sum`, `_count`. */
  render(): string {
    const lines = [`# HELP ${this.#name} ${escapeHelp(this.#help)}`, `# TYPE ${this.#name} histogram`];
    for (const [value, s] of this.#series) {
      if (s.count === 0) continue;
      const label = `${this.#label}="${escapeLabel(value)}"`;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += s.counts[i]!;
        lines.push(`${this.#name}_bucket{le="${this.#bounds[i]}",${label}} ${cumulative}`);
      }
      lines.push(`${this.#name}_bucket{le="+Inf",${label}} ${s.count}`);
      lines.push(`${this.#name}_sum{${label}} ${s.sum}`);
      lines.push(`${this.#name}_count{${label}} ${s.count}`);
    }
    return lines.join('\n') + '\n';
  }
}

export class Series {
  readonly #bounds: Float64Array;
  /** Per bucket, not cumulative; observations past the last bound are only in `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

/** The exposition format's escapes: backslash, double quote and newline in label values. */
function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}
