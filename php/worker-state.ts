/** The words a worker and its pool share about a php-cgi child's life. */

/** Why a child was replaced: what /metrics counts and the log says. */
export const RestartReason = {
  Crash: 'crash',
  Memory: 'memory',
  MaxRequests: 'max_requests',
  Timeout: 'timeout',
  ClientAbort: 'client_abort',
  Reload: 'reload',
} as const;
export type RestartReason = (typeof RestartReason)[keyof typeof RestartReason];

export const WorkerState = {
  Connecting: 'connecting',
  Idle: 'idle',
  Busy: 'busy',
  Recycling: 'recycling',
  Stopped: 'stopped',
} as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];
