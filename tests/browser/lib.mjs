// What both browser tests share: counted checks and Debian's headless Chromium, launched with
// the flags this machine needs, with every request outside `base` recorded.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let count = 0;
export const checks = () => count;
export function check(ok, what) {
  count++;
  if (!ok) throw new Error(`check failed: ${what}`);
}
export function eq(got, want, what) {
  count++;
  if (String(got) !== String(want)) throw new Error(`check failed: ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// Launches Chromium on a fresh profile; `foreign` collects requests to anything but `base`;
// `close` ends the browser and removes the profile.
export async function launch(base) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kizuna-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1200, height: 900 },
    locale: 'en-US',
  });
  const foreign = [];
  context.on('request', (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url());
  });
  const page = context.pages()[0] || (await context.newPage());
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, foreign, close };
}
