/** Object.freeze all the way down: the loaded configuration is shared by every module and must not drift. */
export function deepFreeze<T>(value: T): Readonly<T> {
  // Skipping frozen objects stops at the shared, already deep-frozen DEFAULTS (and at any cycle).
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
