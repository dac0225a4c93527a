// Browser test of an ISP agent's console: Debian's headless Chromium driven by playwright-core.
//
// Run by crates/kizuna-isp/tests/agent_console.rs against a real agent store with known cases:
//   KIZUNA_AGENT_URL   http://127.0.0.1:PORT (the agent's page server, console under /console/)
//   KIZUNA_EXPECT      JSON: the login and the numbers every page must show
//   KIZUNA_SCREENSHOTS directory for one screenshot per page (agent-*.png)
// Exits non-zero on the first failed check (the message names it).

import fs from 'node:fs';
import path from 'node:path';
import { checks, eq, launch } from './lib.mjs';

const base = process.env.KIZUNA_AGENT_URL;
const expect = JSON.parse(process.env.KIZUNA_EXPECT || '{}');
const shots = process.env.KIZUNA_SCREENSHOTS || 'target/browser-screenshots';
if (!base || !expect.user) {
  console.error('KIZUNA_AGENT_URL and KIZUNA_EXPECT are required');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

const { page, foreign, close } = await launch(base);
const shot = (name) => page.screenshot({ path: path.join(shots, `agent-${name}.png`), fullPage: true });
const value = (chart, label) =>
  page.locator(`#${chart} [data-label="${label}"]`).first().getAttribute('data-value');

try {
  await page.goto(`${base}/console/login`);
  await shot('login');
  await page.fill('#name', expect.user);
  await page.fill('#password', expect.password);
  await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
  eq(await page.locator('#whoami').getAttribute('data-user'), expect.user, 'logged in');

  await page.goto(`${base}/console/cases`);
  for (const [state, n] of Object.entries(expect.states)) eq(await value('chart-states', state), n, `cases ${state}`);
  for (const [status, n] of Object.entries(expect.consent)) eq(await value('chart-consent', status), n, `consent ${status}`);
  eq(await page.locator('tr.case').count(), expect.cases, 'case rows');
  await shot('cases');

  await page.goto(`${base}/console/cases/${expect.case}`);
  for (const [kind, n] of Object.entries(expect.timeline)) {
    eq(await page.locator(`tr.event[data-kind="${kind}"]`).count(), n, `timeline ${kind}`);
  }
  await shot('case');

  await page.click(`a[href="/console/notices/${expect.notice}"]`);
  await page.waitForURL(`**/console/notices/${expect.notice}`);
  eq((await page.content()).includes(expect.subject), true, 'notice preview shows the subject');
  await shot('notice');

  await page.goto(`${base}/console/remediation`);
  for (const [stage, n] of Object.entries(expect.funnel)) eq(await value('chart-funnel', stage), n, `funnel ${stage}`);
  await shot('remediation');

  // The language switch: the same page in Japanese.
  await Promise.all([page.waitForNavigation(), page.click('a[href^="/console/lang?to=ja"]')]);
  eq(await page.locator('html').getAttribute('lang'), 'ja', 'switched to Japanese');
  await shot('remediation-ja');

  eq(foreign.length, 0, `requests outside the agent: ${foreign.join(', ')}`);
  console.log(`${checks()} checks passed`);
} finally {
  await close();
}
