/** A group of cases: run together on the servers it starts, reported as one section. */
import type { Section } from './report.js';
import type { Context } from './servers.js';

export interface CaseInfo {
  id: string;
  /** One line for --help. */
  help: string;
}

export interface Group {
  cases: readonly CaseInfo[];
  /** The load generator it needs, if any. */
  tool: 'wrk' | 'h2load' | null;
  /** Whether it starts nginx + php-fpm (all but the rate-limit case do). */
  nginx: boolean;
  /** About how long it runs, in seconds, for the bench's time limit. */
  expectedS(ids: readonly string[], ctx: Pick<Context, 'durationS' | 'rounds' | 'warmupS'>): number;
  run(ctx: Context, ids: readonly string[]): Promise<Section>;
}
