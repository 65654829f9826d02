/*
 * Per-key overrides on the rule detail page, against a real ratekitd and
 * redis-server: an override added in the UI is listed and is what the data
 * plane answers for that key; changed and removed, the data plane follows.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { adminApi, checkOnce, createRule, screenshotOf, signIn, suite, uniqueId } from './harness.js';

const run = suite();
const { flow } = run;

function rule(id, extra = {}) {
  return {
    id,
    description: 'Partner API, per API key',
    match: { path: '/partner/*' },
    key: ['api_key', 'ip'],
    algorithm: 'fixed_window',
    limit: 3,
    window_ms: 60000,
    ...extra,
  };
}

async function overridesOf(id) {
  const r = await adminApi(run.stack, 'GET', `/api/v1/rules/${id}/overrides`);
  assert.equal(r.status, 200);
  return r.body.overrides;
}

describe('per-key overrides', () => {
  flow('adds an override in the UI, which the data plane applies; changes and removes it', async (page) => {
    const id = uniqueId('partner-api');
    // A key with a '/' travels URL-encoded as one path segment.
    const key = `partner/acme-${Date.now().toString(36)}`;
    await createRule(run.stack, rule(id));
    await adminApi(run.stack, 'PUT', `/api/v1/rules/${id}/overrides/${encodeURIComponent('198.51.100.14')}`, {
      limit: 10,
      expires_at: new Date(Date.now() + 7 * 86400000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      note: 'Load test from the office',
    });
    assert.equal((await checkOnce(run.stack, id, key)).limit, 3, 'before: the rule limit');

    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/${id}`);
    await page.getByRole('heading', { name: 'Per-key overrides' }).waitFor();
    await page.locator('tr[data-override="198.51.100.14"]').waitFor();
    const form = page.locator('.override-form');

    // A bad limit is refused beside its field.
    await form.getByLabel('Client key').fill(key);
    await form.getByLabel('Limit', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Save override' }).click();
    await page.getByText('Enter a whole number of requests, 1 or more.').waitFor();

    await form.getByLabel('Limit', { exact: true }).fill('40');
    await form.getByLabel('Window').fill('30s');
    await form.getByLabel('Note').fill('Enterprise plan');
    await page.getByRole('button', { name: 'Save override' }).click();
    const row = page.locator(`tr[data-override="${key}"]`);
    await row.waitFor();
    await row.getByText('40 per 30s').waitFor();
    await row.getByText('Enterprise plan').waitFor();
    const stored = (await overridesOf(id)).find((o) => o.key === key);
    assert.equal(stored.limit, 40);
    assert.equal(stored.window_ms, 30000);
    assert.equal(stored.note, 'Enterprise plan');

    // The data plane answers the override's limit for that key, the rule's for another.
    const decision = await checkOnce(run.stack, id, key);
    assert.equal(decision.allowed, true);
    assert.equal(decision.limit, 40, 'the check shows the override limit');
    assert.equal((await checkOnce(run.stack, id, 'partner/someone-else')).limit, 3, 'other keys keep the rule limit');

    await page.locator('.toast').getByRole('button', { name: 'Dismiss' }).click();
    await screenshotOf(page.locator('.overrides-card'), 'overrides.png');

    // Changed through the row's edit button: the form is filled with it.
    await page.getByRole('button', { name: `Change the override of ${key}` }).click();
    assert.equal(await form.getByLabel('Client key').inputValue(), key);
    assert.equal(await form.getByLabel('Limit', { exact: true }).inputValue(), '40');
    await page.getByRole('heading', { name: 'Change an override' }).waitFor();
    await form.getByLabel('Limit', { exact: true }).fill('25');
    await page.getByRole('button', { name: 'Save override' }).click();
    await row.getByText('25 per 30s').waitFor();
    assert.equal((await checkOnce(run.stack, id, key)).limit, 25);

    // Removed after confirming: the key is back to the rule's limit.
    await page.getByRole('button', { name: `Remove the override of ${key}` }).click();
    await page.getByRole('dialog', { name: 'Remove this override?' }).getByRole('button', { name: 'Remove override' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await overridesOf(id)).filter((o) => o.key === key).length, 0);
    assert.equal((await checkOnce(run.stack, id, key)).limit, 3);
  });

  flow('a bare address typed for an ip rule is flagged with the key its requests count under, fixed in one click, on Overrides, Try it and Counters', async (page) => {
    const id = uniqueId('per-ip');
    await createRule(run.stack, rule(id, { key: ['ip'] }));
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/${id}`);
    const form = page.locator('.override-form');
    const key = form.getByLabel('Client key');
    assert.equal(await key.getAttribute('placeholder'), 'ip:203.0.113.7');
    await key.fill('203.0.113.7');
    const warning = form.getByTestId('bare-ip-warning');
    await warning.getByText('An ip rule counts this client as', { exact: false }).waitFor();
    await warning.getByRole('button', { name: 'Use ip:203.0.113.7' }).click();
    assert.equal(await key.inputValue(), 'ip:203.0.113.7');
    assert.equal(await warning.count(), 0, 'the warning goes with the fix');
    await form.getByLabel('Limit', { exact: true }).fill('9');
    await page.getByRole('button', { name: 'Save override' }).click();
    await page.locator('tr[data-override="ip:203.0.113.7"]').waitFor();
    assert.deepEqual((await overridesOf(id)).map((o) => o.key), ['ip:203.0.113.7']);

    // Try it: the same warning under its key.
    const tryKey = page.locator('.try-form').getByLabel('Key', { exact: true });
    await tryKey.fill('198.51.100.9');
    await page.getByTestId('bare-ip-warning').getByRole('button', { name: 'Use ip:198.51.100.9' }).click();
    assert.equal(await tryKey.inputValue(), 'ip:198.51.100.9');

    // Counters: the placeholder is the rule's key form, and a bare address is flagged too.
    await page.goto(`${run.stack.adminUrl}/counters`);
    await page.getByLabel('Rule').selectOption(id);
    const counterKey = page.getByLabel('Key');
    assert.equal(await counterKey.getAttribute('placeholder'), 'ip:203.0.113.7');
    await counterKey.fill('203.0.113.7');
    await page.getByTestId('bare-ip-warning').getByRole('button', { name: 'Use ip:203.0.113.7' }).click();
    assert.equal(await counterKey.inputValue(), 'ip:203.0.113.7');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByTestId('counter-remaining').waitFor();
    await page.locator('.card-title code', { hasText: 'ip:203.0.113.7' }).waitFor();
  });

  flow('the overrides of a rule fit a phone', async (page) => {
    const id = uniqueId('mobile-api');
    await createRule(run.stack, rule(id, { algorithm: 'token_bucket', burst: 6 }));
    for (const [key, limit, note] of [
      ['partner/acme', 40, 'Enterprise plan'],
      ['203.0.113.200', 12, ''],
    ]) {
      const r = await adminApi(run.stack, 'PUT', `/api/v1/rules/${id}/overrides/${encodeURIComponent(key)}`, { limit, burst: limit, note });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/${id}`);
    await page.locator('tr[data-override="partner/acme"]').waitFor();
    await page.locator('.override-form').getByLabel('Burst').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page fits the width (${overflow}px too wide)`);
  }, { width: 390, height: 844 });
});
