/** Headless Debian Chromium for the dashboard tests (never a downloaded browser). */
import fs from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** node:test `skip` value: a reason when Chromium is missing outside CI; in CI a missing browser must fail. */
export function chromiumSkip(): string | false {
  return !fs.existsSync(CHROMIUM) && !process.env['CI'] ? `${CHROMIUM} is not installed (set CI to make this a failure)` : false;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}
