// Browser test of the kizuna hub console: Debian's headless Chromium driven by playwright-core.
//
// Run by crates/kizuna-console/tests/browser.rs, which builds a known data set, starts the
// console on a loopback port and passes:
//   KIZUNA_CONSOLE_URL   http://127.0.0.1:PORT
//   KIZUNA_EXPECT        JSON: users, passwords and the numbers every chart must show
//   KIZUNA_SCREENSHOTS   directory for one screenshot per page
// Exits non-zero on the first failed check (the message names it).

import fs from 'node:fs';
import path from 'node:path';
import { check, checks, eq, launch } from './lib.mjs';

const base = process.env.KIZUNA_CONSOLE_URL;
const expect = JSON.parse(process.env.KIZUNA_EXPECT || '{}');
const shots = process.env.KIZUNA_SCREENSHOTS || 'target/browser-screenshots';
if (!base || !expect.operator) {
  console.error('KIZUNA_CONSOLE_URL and KIZUNA_EXPECT are required');
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

// Nothing may come from anywhere but the console itself.
const { page, foreign, close } = await launch(base);
const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const attr = (sel, a) => page.locator(sel).first().getAttribute(a);

async function login(user) {
  await page.goto(`${base}/console/login`);
  await page.fill('#name', user.name);
  await page.fill('#password', user.password);
  await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
  eq(await attr('#whoami', 'data-user'), user.name, `logged in as ${user.name}`);
}

async function logout() {
  await Promise.all([page.waitForNavigation(), page.click('#logout')]);
  check(page.url().includes('/console/login'), 'logout lands on the login page');
}

try {
  // Not logged in: the console sends us to the login page.
  const r0 = await page.goto(`${base}/console/overview`);
  check(page.url().includes('/console/login'), `unauthenticated overview redirects to login (at ${page.url()}, ${r0.status()})`);
  await shot('login');

  await login(expect.operator);
  await page.goto(`${base}/console/overview?range=24h`);
  await shot('overview');
  // Charts: every classification and feed total from the known data set.
  for (const [series, total] of Object.entries(expect.by_class)) {
    eq(await attr(`#chart-class g.series[data-series="${series}"]`, 'data-total'), total, `overview by class: ${series}`);
  }
  for (const [series, total] of Object.entries(expect.by_feed)) {
    eq(await attr(`#chart-feed g.series[data-series="${series}"]`, 'data-total'), total, `overview by feed: ${series}`);
  }
  eq(await attr('#chart-class svg', 'data-total'), expect.in_24h, 'overview: observations in the last 24 h');
  // The hour points: the newest hour bucket of each series carries its count.
  for (const p of expect.points) {
    eq(await attr(`#chart-class circle.point[data-series="${p.series}"][data-label="${p.label}"]`, 'data-value'), p.value,
      `point ${p.series} at ${p.label}`);
  }
  const svgBox = await page.locator('#chart-class svg').boundingBox();
  check(svgBox && svgBox.width > 300 && svgBox.height > 100, 'the chart is drawn with a real size');
  eq(await attr('[data-total="observations"]', 'data-total'), 'observations', 'totals table present');
  eq((await page.locator('[data-total="observations"]').textContent()).trim(), expect.observations, 'total observations');
  eq((await page.locator('[data-total="quarantined"]').textContent()).trim(), expect.quarantined, 'quarantined');
  for (const [sensor, stale] of Object.entries(expect.stale)) {
    eq(await attr(`tr.sensor[data-sensor="${sensor}"]`, 'data-stale'), stale, `sensor ${sensor} stale flag`);
  }

  // 7-day view sums the same observations by day.
  await page.click('a[href="/console/overview?range=7d"]');
  eq(await attr('#range', 'data-range'), '7d', '7-day range selected');
  eq(await attr('#chart-class svg', 'data-points'), 7, 'seven daily buckets');
  eq(await attr('#chart-class svg', 'data-total'), expect.in_7d, 'observations in the last 7 days');

  await page.goto(`${base}/console/members`);
  await shot('members');
  for (const [member, rate] of Object.entries(expect.rates)) {
    eq(await attr(`#chart-national g.bar[data-label="${member}"]`, 'data-value'), rate, `national chart: ${member}`);
  }
  for (const [member, routed] of Object.entries(expect.routed)) {
    eq(await attr(`tr.member[data-member="${member}"]`, 'data-routed'), routed, `routed to ${member}`);
  }

  await page.click(`a[href="/console/members/${expect.funnel.member}"]`);
  await page.waitForSelector('#chart-funnel');
  await shot('member');
  for (const [stage, v] of expect.funnel.stages) {
    eq(await attr(`#chart-funnel g.stage[data-label="${stage}"]`, 'data-value'), v, `funnel stage ${stage}`);
  }
  eq(await attr(`#chart-funnel g.stage[data-label="${expect.funnel.stages.at(-1)[0]}"]`, 'data-percent'), expect.funnel.remediated_percent, 'remediated share');
  eq(await attr('#chart-routed svg', 'data-total'), expect.routed[expect.funnel.member], 'routed per day sums to the routed total');

  await page.goto(`${base}/console/indicators`);
  await shot('indicators');
  for (const [cat, n] of Object.entries(expect.indicators)) {
    eq(await attr(`#chart-indicators g.bar[data-label="${cat}"]`, 'data-value'), n, `active indicators: ${cat}`);
  }
  check(await page.locator(`#conflicts tr.indicator[data-value="${expect.conflict}"]`).count() === 1, 'allow-list conflict listed');

  await page.goto(`${base}/console/search`);
  await page.fill('#q', expect.search.q);
  await Promise.all([page.waitForNavigation(), page.click('#search-submit')]);
  await shot('search');
  eq((await page.locator('#obs-count').textContent()).trim(), expect.search.observations, 'search: observations');
  eq((await page.locator('#ind-count').textContent()).trim(), expect.search.indicators, 'search: indicators');

  await page.goto(`${base}/console/audit`);
  await shot('audit');
  eq(await attr('#verdict', 'data-verdict'), 'intact', 'audit chain verified');
  await page.goto(`${base}/console/users`);
  await shot('users');
  check(await page.locator(`tr.user[data-user="${expect.analyst.name}"]`).count() === 1, 'users page lists the analyst');

  // Language switch: Japanese, then back; the Accept-Language default is English here.
  await page.goto(`${base}/console/overview`);
  eq(await attr('html', 'lang'), 'en', 'English by default for an en-US browser');
  await Promise.all([page.waitForNavigation(), page.click('#lang-switch')]);
  eq(await attr('html', 'lang'), 'ja', 'switched to Japanese');
  eq((await page.locator('a[data-nav="overview"]').textContent()).trim(), '概要', 'Japanese navigation');
  eq((await page.locator('#chart-class svg title').first().textContent()).trim(), '分類別の観測数', 'Japanese chart title');
  for (const [series, total] of Object.entries(expect.by_class)) {
    eq(await attr(`#chart-class g.series[data-series="${series}"]`, 'data-total'), total, `Japanese page, same numbers: ${series}`);
  }
  await shot('overview-ja');
  await page.goto(`${base}/console/members/${expect.funnel.member}`);
  eq(await attr('#chart-funnel g.stage[data-label="駆除済み"]', 'data-value'), expect.funnel.stages.at(-1)[1], 'Japanese funnel labels');
  await shot('member-ja');
  await Promise.all([page.waitForNavigation(), page.click('#lang-switch')]);
  eq(await attr('html', 'lang'), 'en', 'back to English');
  await logout();

  // An analyst cannot open operator pages, and is not offered them.
  await login(expect.analyst);
  check(await page.locator('a[data-nav="audit"]').count() === 0, 'no audit link for an analyst');
  check(await page.locator('a[data-nav="users"]').count() === 0, 'no users link for an analyst');
  for (const p of ['audit', 'users']) {
    const resp = await page.goto(`${base}/console/${p}`);
    eq(resp.status(), 403, `analyst opening /console/${p}`);
    check((await page.locator('#error').textContent()).length > 0, `refusal message on /console/${p}`);
  }
  await shot('analyst-forbidden');
  const ok = await page.goto(`${base}/console/search?q=${encodeURIComponent(expect.search.q)}`);
  eq(ok.status(), 200, 'analyst may search');
  await logout();

  check(foreign.length === 0, `no request left the console: ${foreign.join(', ')}`);
  console.log(`browser test: ${checks()} checks passed; screenshots in ${shots}`);
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e.message || e);
  process.exitCode = 1;
} finally {
  await close();
}
