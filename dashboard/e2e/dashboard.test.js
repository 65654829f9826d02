/*
 * The dashboard against a real ratekitd and a real redis-server, in Chromium.
 * Each flow is its own test, with its own rules, so one failing flow does not
 * take the others down.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe } from 'node:test';
import { adminApi, createRule, fireChecks, flow as harnessFlow, launchBrowser, screenshot, signIn, startStack, uniqueId } from './harness.js';

let stack;
let browser;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (stack) await stack.stop();
});

function baseRule(id, extra = {}) {
  return {
    id,
    description: 'Public API, per client IP',
    match: { methods: ['GET', 'POST'], path: '/api/*', hosts: [], headers: {} },
    key: ['api_key', 'ip'],
    algorithm: 'fixed_window',
    limit: 5,
    window_ms: 60000,
    mode: 'enforce',
    priority: 100,
    ...extra,
  };
}

async function statValue(page, testId) {
  const text = await page.getByTestId(testId).locator('.stat-value').textContent();
  return Number(text.replace(/[^\d]/g, ''));
}

function flow(name, fn, viewport) {
  harnessFlow(() => browser, name, fn, viewport);
}

describe('dashboard', () => {
  flow('signs in with the admin token and refuses a wrong one with a message', async (page) => {
    await signIn(page, stack.adminUrl, 'not-the-right-token-at-all', { shouldFail: true });
    await page.getByText('This token is not valid').waitFor();
    assert.equal(await page.getByLabel('API token').getAttribute('aria-invalid'), 'true');

    await signIn(page, stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).waitFor();

    // The token lasts for the tab; signing out forgets it.
    await page.reload();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('ratekit.token')), null);
  });

  flow('creates a rule through the form after showing the field error of a bad limit', async (page) => {
    const id = uniqueId('checkout-api');
    await signIn(page, stack.adminUrl);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    await page.getByRole('link', { name: 'New rule' }).click();
    await page.getByLabel('Rule ID').fill(id);
    await page.getByLabel('Description').fill('Checkout and payment calls, per client IP');
    await page.getByLabel('Sliding window').check();
    await page.getByLabel('Path').fill('/api/*');
    await page.getByLabel('Limit', { exact: true }).fill('-5');
    await page.getByLabel('Window', { exact: true }).fill('30s');
    await page.getByRole('button', { name: 'Create rule' }).click();

    // The server refuses it; its message sits beside the Limit field.
    const limit = page.getByLabel('Limit', { exact: true });
    await page.waitForFunction(() => document.querySelector('.field-invalid input[aria-invalid="true"]'));
    assert.equal(await limit.getAttribute('aria-invalid'), 'true');
    const describedBy = await limit.getAttribute('aria-describedby');
    const message = await page.locator(`[id="${describedBy.split(' ')[0]}"]`).textContent();
    assert.ok(message.trim().length > 0, 'a message is shown beside Limit');
    assert.equal((await adminApi(stack, 'GET', `/api/v1/rules/${id}`)).status, 404, 'nothing was stored');

    await limit.fill('20');
    assert.equal(await limit.getAttribute('aria-invalid'), null, 'editing the field clears its error');
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'rule-form.png');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.waitForURL(`**/rules/${id}`);
    const stored = await adminApi(stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.limit, 20);
    assert.equal(stored.body.window_ms, 30000);
    assert.equal(stored.body.algorithm, 'sliding_window');
  });

  flow('overview numbers and chart move within 3 s of checks on the data plane', async (page) => {
    const id = uniqueId('public-api');
    await createRule(stack, baseRule(id, { limit: 4 }));
    await signIn(page, stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('.live-live').waitFor({ timeout: 5000 });
    const allowedBefore = await statValue(page, 'stat-allowed');
    const deniedBefore = await statValue(page, 'stat-denied');
    const chart = page.getByTestId('traffic-chart');
    const chartAllowedBefore = Number(await chart.getAttribute('data-allowed-sum'));

    const decisions = await fireChecks(stack, id, '203.0.113.9', 7);
    assert.equal(decisions.filter((d) => d.allowed).length, 4, 'the data plane allowed the limit');
    const fired = Date.now();
    await page.waitForFunction(
      ([a, d]) => {
        const value = (tid) => Number(document.querySelector(`[data-testid="${tid}"] .stat-value`).textContent.replace(/[^\d]/g, ''));
        return value('stat-allowed') >= a + 4 && value('stat-denied') >= d + 3;
      },
      [allowedBefore, deniedBefore],
      { timeout: 3000 },
    );
    assert.ok(Date.now() - fired <= 3000);
    assert.ok(Number(await chart.getAttribute('data-allowed-sum')) >= chartAllowedBefore + 4, 'the chart took the new points');
    await page.getByTestId(`rule-card-${id}`).waitFor();
    // A few more seconds of traffic, so the picture shows a trend.
    for (let i = 0; i < 6; i++) {
      await fireChecks(stack, id, `203.0.113.${20 + i}`, 3 + (i % 3) * 2);
      await page.waitForTimeout(700);
    }
    await page.waitForTimeout(1200);
    await screenshot(page, 'overview.png');
  });

  flow('switches a rule to shadow in one click', async (page) => {
    const id = uniqueId('search-beta');
    await createRule(stack, baseRule(id, { description: 'New search endpoint, on trial' }));
    await signIn(page, stack.adminUrl);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    const group = page.getByRole('group', { name: `Mode of ${id}` });
    await group.getByRole('button', { name: 'Shadow' }).click();
    await page.waitForFunction((rid) => {
      const b = [...document.querySelectorAll(`[aria-label="Mode of ${rid}"] button`)].find((x) => x.textContent === 'Shadow');
      return b && b.getAttribute('aria-pressed') === 'true' && !b.disabled;
    }, id);
    const stored = await adminApi(stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.body.mode, 'shadow');
    await screenshot(page, 'rules.png');
  });

  flow('edits a rule, then restores the earlier version from its history', async (page) => {
    const id = uniqueId('uploads');
    await createRule(stack, baseRule(id, { limit: 10 }));
    await signIn(page, stack.adminUrl);
    await page.goto(`${stack.adminUrl}/rules/${id}/edit`);
    const limit = page.getByLabel('Limit', { exact: true });
    await page.waitForFunction(() => document.querySelector('.rule-form'));
    assert.equal(await limit.inputValue(), '10');
    await limit.fill('25');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    assert.equal((await adminApi(stack, 'GET', `/api/v1/rules/${id}`)).body.limit, 25);

    await page.getByRole('link', { name: 'History' }).click();
    const dialog = page.getByRole('dialog', { name: `History of ${id}` });
    await dialog.waitFor();
    const first = dialog.getByRole('button', { name: /^v1\b/ });
    await first.click();
    await dialog.getByRole('button', { name: 'Restore version 1' }).click();
    await page.getByText(`Restored ${id} to version 1`).waitFor();
    const stored = await adminApi(stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.body.limit, 10);
  });

  flow('deletes a rule after confirming', async (page) => {
    const id = uniqueId('legacy-v1');
    await createRule(stack, baseRule(id));
    await signIn(page, stack.adminUrl);
    await page.goto(`${stack.adminUrl}/rules`);
    await page.getByRole('button', { name: `Delete ${id}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this rule?' });
    await dialog.getByRole('button', { name: 'Delete rule' }).click();
    await page.locator(`tr[data-rule="${id}"]`).waitFor({ state: 'detached' });
    assert.equal((await adminApi(stack, 'GET', `/api/v1/rules/${id}`)).status, 404);
  });

  flow('rule detail runs a check in the try-it box and shows the headers', async (page) => {
    const id = uniqueId('login');
    await createRule(stack, baseRule(id, { limit: 3, description: 'Sign-in attempts per API key, else per IP' }));
    await fireChecks(stack, id, '198.51.100.7', 5);
    await signIn(page, stack.adminUrl);
    await page.goto(`${stack.adminUrl}/rules/${id}`);
    await page.getByLabel('Key', { exact: true }).fill('203.0.113.50');
    await page.getByRole('button', { name: 'Check' }).click();
    const decision = page.getByTestId('decision');
    await decision.waitFor();
    await decision.getByText('Allowed', { exact: true }).waitFor();
    await decision.getByText('RateLimit-Policy').waitFor();
    await page.setViewportSize({ width: 1280, height: 1320 });
    await page.waitForTimeout(1500);
    // The picture ends below the try-it box, not halfway through the next card.
    const box = await page.locator('.two-col').boundingBox();
    await screenshot(page, 'rule-detail.png', { clip: { x: 0, y: 0, width: 1280, height: Math.min(1320, Math.ceil(box.y + box.height + 16)) } });
  });

  flow('violations table lists the denials and downloads them as CSV', async (page) => {
    const id = uniqueId('password-reset');
    await createRule(stack, baseRule(id, { limit: 1 }));
    await fireChecks(stack, id, '192.0.2.44', 4); // 3 denials: one row with a count
    await fireChecks(stack, id, '192.0.2.45', 2);
    await fireChecks(stack, id, '192.0.2.46', 2);
    await signIn(page, stack.adminUrl);
    await page.goto(`${stack.adminUrl}/violations`);
    // The denial log is written in the background: ask again until it shows.
    const row = page.locator('tbody tr', { hasText: id }).first();
    for (let i = 0; i < 10 && !(await row.isVisible()); i++) {
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForTimeout(500);
    }
    await row.waitFor();
    await page.getByLabel('Rule', { exact: true }).selectOption(id);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction((rid) => [...document.querySelectorAll('tbody tr')].every((tr) => tr.textContent.includes(rid)), id);
    // Five denials, each key's in a row (two if a second or a write fell between them), with its count.
    const denials = async () =>
      page.locator('tbody tr').evaluateAll((trs) =>
        trs.reduce((n, tr) => n + Number((tr.querySelector('.violation-count')?.textContent || '1').replace(/\D/g, '')), 0),
      );
    for (let i = 0; i < 10 && (await denials()) < 5; i++) {
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForTimeout(500);
    }
    assert.equal(await denials(), 5, 'every denial is counted');
    const rows = await page.locator('tbody tr').count();
    assert.ok(rows >= 3 && rows <= 5, `one row per key and second, not per denial (${rows})`);
    await page.locator('tbody tr', { hasText: '192.0.2.44' }).locator('.violation-count').first().waitFor();
    await screenshot(page, 'violations.png');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(download.suggestedFilename(), /\.csv$/);
    assert.ok(csv.includes(id), 'the CSV holds the rule');
    const lines = csv.trim().split('\r\n');
    assert.equal(lines[0], 'id,at,rule,key,mode,limit,cost,count');
    const counted = lines.slice(1).filter((l) => l.includes(id)).reduce((n, l) => n + Number(l.split(',').at(-1)), 0);
    assert.equal(counted, 5, 'the CSV counts the five denials');
  });

  flow('adds a safelist entry with an expiry and removes it', async (page) => {
    const value = `10.${Math.floor(Math.random() * 250)}.7.0/24`;
    await signIn(page, stack.adminUrl);
    await page.goto(`${stack.adminUrl}/lists`);
    await page.getByRole('tab', { name: /Safelist/ }).click();
    await page.getByLabel('Value').fill(value);
    await page.getByLabel('Expires').selectOption('7d');
    await page.getByLabel('Note').fill('Office network');
    await page.getByRole('button', { name: 'Add to safelist' }).click();
    const row = page.locator(`tr[data-entry="${value}"]`);
    await row.waitFor();
    const stored = (await adminApi(stack, 'GET', '/api/v1/lists')).body.entries.find((e) => e.value === value);
    assert.equal(stored.list, 'safelist');
    assert.ok(stored.expires_at, 'the expiry was stored');
    await screenshot(page, 'lists.png');

    await page.getByRole('button', { name: `Remove ${value}` }).click();
    await page.getByRole('dialog', { name: 'Remove this entry?' }).getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    const left = (await adminApi(stack, 'GET', '/api/v1/lists')).body.entries.filter((e) => e.value === value);
    assert.equal(left.length, 0);
  });

  flow('is usable on a phone: the menu opens and every page renders', async (page) => {
    await signIn(page, stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    for (const [label, heading] of [
      ['Rules', 'Rules'],
      ['Violations', 'Violations'],
      ['Allow & deny lists', 'Allow & deny lists'],
      ['Counters', 'Counters'],
      ['API tokens', 'API tokens'],
    ]) {
      await page.getByRole('button', { name: 'Open menu' }).click();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${label} fits the width (${overflow}px too wide)`);
    }
  }, { width: 390, height: 844 });
});
