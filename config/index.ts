/** The public face of config/: load once at start-up, hand the frozen result to everything else. */
export { loadConfig, ENV_VARS, EMBEDDED_SOURCE } from './load.js';
export type { LoadOptions, Overrides, EnvVar } from './load.js';
export { DEFAULTS } from './defaults.js';
export { DEFAULT_POOL_NAME } from './semantics.js';
export { compilePattern, compileDenyPattern, patternMatchesEverything, isBasenameGlob, hasWildcard, type PathMatcher } from './pattern.js';
export * from './errors.js';
export * from './types.js';
