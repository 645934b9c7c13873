import { type Browser, chromium } from 'playwright-core';

/**
 * Launches the machine's headless Chromium (/usr/bin/chromium) through playwright-core, for a browser test
 * of the repository's own; close it in the test's afterAll.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}
