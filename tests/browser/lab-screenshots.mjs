// Screenshots of the dashboard from a real lab run (scripts/dashboard-lab-screenshots.sh
// starts the lab and vpnmon and runs this inside the lab's network namespace).
// Env: VPNMON_BASE (e.g. http://127.0.0.1:18080), VPNMON_USER, VPNMON_PASSWORD,
// VPNMON_MONITOR (the detail page's monitor), VPNMON_SCREENSHOTS (output dir).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const B = process.env.VPNMON_BASE;
const out = process.env.VPNMON_SCREENSHOTS;
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.VPNMON_CHROMIUM || '/usr/bin/chromium',
  args: ARGS,
  headless: true,
});
const problems = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, timezoneId: 'UTC' });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  await page.goto(`${B}/`);
  await page.fill('input[name=user]', process.env.VPNMON_USER);
  await page.fill('input[name=password]', process.env.VPNMON_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => u.pathname.startsWith('/dashboard/'));
  await page.waitForSelector('table tr[data-monitor-id]');
  await page.waitForTimeout(1500); // sparklines
  await page.screenshot({ path: join(out, 'dashboard-lab-overview.png'), fullPage: true });
  await page.goto(`${B}/dashboard/monitors/${process.env.VPNMON_MONITOR}`);
  await page.waitForSelector('[data-range="1h"]');
  await page.click('[data-range="1h"]');
  await page.waitForFunction(() => Number(document.body?.dataset.renders || 0) > 0);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: join(out, 'dashboard-lab-detail.png'), fullPage: true });
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`page problems:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`screenshots in ${out}`);
