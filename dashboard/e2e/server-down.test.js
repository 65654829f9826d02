/*
 * The dashboard when the server goes away under an open page: it must say
 * the server cannot be reached, and not show the last answer as healthy nor
 * the silence as a drop of traffic to zero. Its own ratekitd, stopped here.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { createRule, fireChecks, signIn, suite } from './harness.js';

const run = suite();
const { flow } = run;

const serverStatus = (page) => page.getByTestId('server-status');

describe('server down', () => {
  flow('a stopped server shows as unreachable in the sidebar and Store box, and the chart as not live', async (page) => {
    const id = 'public-api';
    await createRule(run.stack, { id, match: { path: '/api/*' }, key: ['ip'], algorithm: 'fixed_window', limit: 50, window_ms: 60000 });
    await signIn(page, run.stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('.live-live').waitFor({ timeout: 5000 });
    await serverStatus(page).getByText('healthy').waitFor();
    await fireChecks(run.stack, id, '203.0.113.9', 6);
    const chart = page.getByTestId('traffic-chart');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="traffic-chart"]').dataset.allowedSum) >= 6, null, { timeout: 4000 });
    assert.equal(await chart.getAttribute('data-live'), 'true');

    await run.stack.stop();
    const stopped = Date.now();
    await serverStatus(page).getByText('Server unreachable').waitFor({ timeout: 10000 });
    assert.ok(Date.now() - stopped < 10000, 'seen within seconds');
    const store = await page.getByTestId('store-health').textContent();
    assert.doesNotMatch(store, /healthy/, `the Store box does not say healthy (${store})`);
    assert.match(store, /unreachable/);
    await page.waitForFunction(() => document.querySelector('[data-testid="traffic-chart"]').dataset.live === 'false', null, { timeout: 8000 });
    assert.match(await chart.textContent(), /Not live/);
    assert.match(await page.getByTestId('stat-checks').textContent(), /Not live/);
    // The figures received stay: the stop is not drawn as traffic falling to zero.
    await page.waitForTimeout(3000);
    assert.ok(Number(await chart.getAttribute('data-allowed-sum')) >= 6, 'the chart keeps what it received');

    // Another page says the same, never the last good answer.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('heading', { name: 'Rules', level: 1 }).waitFor();
    await page.waitForTimeout(1000);
    await serverStatus(page).getByText('Server unreachable').waitFor();
    assert.equal(await serverStatus(page).getByText('healthy').count(), 0);
  });
});
