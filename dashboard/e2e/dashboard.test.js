/*
 * The dashboard against a real ratekitd and a real redis-server, in Chromium.
 * Each flow is its own test, with its own rules, so one failing flow does not
 * take the others down.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe } from 'node:test';
import { adminApi, createRule, fireChecks, screenshot, signIn, statValue, suite, uniqueId } from './harness.js';

const run = suite();
const { flow } = run;

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

const PHONE = { width: 390, height: 844 };

/* A client key of exactly 200 characters, the most a list value may have, with no place to break. */
function longValue(prefix) {
  return `${prefix}:${'verylongkeysegment'.repeat(12)}`.slice(0, 200);
}

/* Asserts the element's right edge is inside the container's and the page is not wider than the window. */
async function assertInside(page, element, container, what) {
  const [e, c] = [await element.boundingBox(), await container.boundingBox()];
  assert.ok(e.x + e.width <= c.x + c.width + 0.5, `${what}: its right edge (${e.x + e.width}) is within its card (${c.x + c.width})`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what}: the page fits the width (${overflow}px too wide)`);
}

describe('dashboard', () => {
  flow('signs in with the admin token and refuses a wrong one with a message', async (page) => {
    await signIn(page, run.stack.adminUrl, 'not-the-right-token-at-all', { shouldFail: true });
    await page.getByText('This token is not valid').waitFor();
    assert.equal(await page.getByLabel('API token').getAttribute('aria-invalid'), 'true');

    await signIn(page, run.stack.adminUrl);
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
    await signIn(page, run.stack.adminUrl);
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
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).status, 404, 'nothing was stored');

    await limit.fill('20');
    assert.equal(await limit.getAttribute('aria-invalid'), null, 'editing the field clears its error');
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'rule-form.png');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.waitForURL(`**/rules/${id}`);
    const stored = await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.status, 200);
    assert.equal(stored.body.limit, 20);
    assert.equal(stored.body.window_ms, 30000);
    assert.equal(stored.body.algorithm, 'sliding_window');
  });

  flow('overview numbers and chart move within 3 s of checks on the data plane', async (page) => {
    const id = uniqueId('public-api');
    await createRule(run.stack, baseRule(id, { limit: 4 }));
    await signIn(page, run.stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('.live-live').waitFor({ timeout: 5000 });
    const allowedBefore = await statValue(page, 'stat-allowed');
    const deniedBefore = await statValue(page, 'stat-denied');
    const chart = page.getByTestId('traffic-chart');
    const chartAllowedBefore = Number(await chart.getAttribute('data-allowed-sum'));

    const decisions = await fireChecks(run.stack, id, '203.0.113.9', 7);
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
      await fireChecks(run.stack, id, `203.0.113.${20 + i}`, 3 + (i % 3) * 2);
      await page.waitForTimeout(700);
    }
    await page.waitForTimeout(1200);
    await screenshot(page, 'overview.png');
  });

  flow('switches a rule to shadow in one click', async (page) => {
    const id = uniqueId('search-beta');
    await createRule(run.stack, baseRule(id, { description: 'New search endpoint, on trial' }));
    await signIn(page, run.stack.adminUrl);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    const group = page.getByRole('group', { name: `Mode of ${id}` });
    await group.getByRole('button', { name: 'Shadow' }).click();
    await page.waitForFunction((rid) => {
      const b = [...document.querySelectorAll(`[aria-label="Mode of ${rid}"] button`)].find((x) => x.textContent === 'Shadow');
      return b && b.getAttribute('aria-pressed') === 'true' && !b.disabled;
    }, id);
    const stored = await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.body.mode, 'shadow');
    await screenshot(page, 'rules.png');
  });

  flow('edits a rule, then restores the earlier version from its history', async (page) => {
    const id = uniqueId('uploads');
    await createRule(run.stack, baseRule(id, { limit: 10 }));
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/${id}/edit`);
    const limit = page.getByLabel('Limit', { exact: true });
    await page.waitForFunction(() => document.querySelector('.rule-form'));
    assert.equal(await limit.inputValue(), '10');
    await limit.fill('25');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).body.limit, 25);

    await page.getByRole('link', { name: 'History' }).click();
    const dialog = page.getByRole('dialog', { name: `History of ${id}` });
    await dialog.waitFor();
    const first = dialog.getByRole('button', { name: /^v1\b/ });
    await first.click();
    await dialog.getByRole('button', { name: 'Restore version 1' }).click();
    // Nothing happens before confirming.
    await dialog.getByRole('group', { name: 'Confirm the restore' }).waitFor();
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).body.limit, 25, 'not restored before confirming');
    await dialog.getByRole('button', { name: 'Yes, restore' }).click();
    await page.getByText(`Restored ${id} to version 1`).waitFor();
    const stored = await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`);
    assert.equal(stored.body.limit, 10);
    // The restore is the current version now; the version in force (v1 and the restore) offers no restore.
    await dialog.getByRole('button', { name: /^v3\b/ }).waitFor();
    assert.equal(await dialog.getByRole('button', { name: /^Restore version/ }).count(), 0, 'no restore of the version in force');
    await first.click();
    assert.equal(await dialog.getByRole('button', { name: /^Restore version/ }).count(), 0, 'v1 is the rule in force: no restore');
    await dialog.getByRole('button', { name: /^v2\b/ }).click();
    await dialog.getByRole('button', { name: 'Restore version 2' }).waitFor();
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}/history`)).body.history.length, 3, 'no extra version');
  });

  flow('deletes a rule after confirming', async (page) => {
    const id = uniqueId('legacy-v1');
    await createRule(run.stack, baseRule(id));
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules`);
    await page.getByRole('button', { name: `Delete ${id}` }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this rule?' });
    await dialog.getByRole('button', { name: 'Delete rule' }).click();
    await page.locator(`tr[data-rule="${id}"]`).waitFor({ state: 'detached' });
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).status, 404);
  });

  flow('rule detail runs a check in the try-it box and shows the headers', async (page) => {
    const id = uniqueId('login');
    await createRule(run.stack, baseRule(id, { limit: 3, description: 'Sign-in attempts per API key, else per IP' }));
    await fireChecks(run.stack, id, '198.51.100.7', 5);
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/${id}`);
    // Offered an obviously made-up key, not a real client's.
    assert.equal(await page.getByLabel('Key', { exact: true }).inputValue(), 'try-it:dashboard');
    await page.getByLabel('Key', { exact: true }).fill('203.0.113.50');
    await page.getByRole('button', { name: 'Check' }).click();
    const decision = page.getByTestId('decision');
    await decision.waitFor();
    // A cost below 1 is flagged here, and the earlier answer goes.
    await page.getByLabel('Cost').fill('0');
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByText('A whole number, 1 or more.').waitFor();
    assert.equal(await decision.count(), 0, 'the previous result is cleared');
    await page.getByLabel('Cost').fill('1');
    await page.getByRole('button', { name: 'Check' }).click();
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
    await createRule(run.stack, baseRule(id, { limit: 1 }));
    await fireChecks(run.stack, id, '192.0.2.44', 4); // 3 denials: one row with a count
    await fireChecks(run.stack, id, '192.0.2.45', 2);
    await fireChecks(run.stack, id, '192.0.2.46', 2);
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/violations`);
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
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/lists`);
    await page.getByRole('tab', { name: /Safelist/ }).click();
    await page.getByLabel('Value').fill(value);
    await page.getByLabel('Expires').selectOption('7d');
    await page.getByLabel('Note').fill('Office network');
    await page.getByRole('button', { name: 'Add to safelist' }).click();
    const row = page.locator(`tr[data-entry="${value}"]`);
    await row.waitFor();
    const stored = (await adminApi(run.stack, 'GET', '/api/v1/lists')).body.entries.find((e) => e.value === value);
    assert.equal(stored.list, 'safelist');
    assert.ok(stored.expires_at, 'the expiry was stored');
    await screenshot(page, 'lists.png');

    await page.getByRole('button', { name: `Remove ${value}` }).click();
    await page.getByRole('dialog', { name: 'Remove this entry?' }).getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    const left = (await adminApi(run.stack, 'GET', '/api/v1/lists')).body.entries.filter((e) => e.value === value);
    assert.equal(left.length, 0);
  });

  flow('the lists page shows an entry another client adds, and its removal, without a reload', async (page) => {
    const value = `198.51.100.${Math.floor(Math.random() * 250)}`;
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/lists`);
    await page.getByRole('tab', { name: /Denylist/ }).click();
    await page.getByRole('tabpanel').waitFor();
    const added = await adminApi(run.stack, 'POST', '/api/v1/lists', { list: 'denylist', value, note: 'Added from another tab' });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    const row = page.locator(`tr[data-entry="${value}"]`);
    await row.waitFor({ timeout: 8000 });
    assert.equal((await adminApi(run.stack, 'DELETE', `/api/v1/lists/${added.body.id}`)).status, 204);
    await row.waitFor({ state: 'detached', timeout: 8000 });
  });

  flow('the rule form reports every field in error at once, in the unit typed', async (page) => {
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules/new`);
    await page.getByLabel('Limit', { exact: true }).fill('');
    await page.getByLabel('Window', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText('3 fields need attention: Rule ID, Limit and Window').waitFor();
    for (const label of ['Rule ID', 'Limit', 'Window']) {
      assert.equal(await page.getByLabel(label, { exact: true }).getAttribute('aria-invalid'), 'true', `${label} is marked`);
    }
    await page.waitForFunction(() => document.activeElement && document.activeElement.placeholder === 'api-per-ip');

    const id = uniqueId('too-long-window');
    await page.getByLabel('Rule ID').fill(id);
    await page.getByLabel('Limit', { exact: true }).fill('5');
    await page.getByLabel('Window', { exact: true }).fill('30d');
    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.getByText('must be at most 7 days').waitFor();
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).status, 404, 'nothing was stored');
  });

  flow('the live figures of the last second do not drop to 0 under steady traffic', async (page) => {
    const id = uniqueId('steady');
    await createRule(run.stack, baseRule(id, { limit: 100000, window_ms: 3600000, algorithm: 'token_bucket' }));
    await signIn(page, run.stack.adminUrl);
    await page.locator('.live-live').waitFor({ timeout: 5000 });
    let running = true;
    const traffic = (async () => {
      while (running) {
        await fetch(`${run.stack.dataUrl}/v1/check`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ rule: id, key: '203.0.113.77' }) });
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    try {
      // Once the traffic shows, the figure of the last second stays above 0 at every look.
      await page.waitForFunction(() => /^[1-9][\d,]* in the last second/.test(document.querySelector('[data-testid="stat-checks"] .stat-detail').textContent), null, { timeout: 5000 });
      const seen = [];
      for (let i = 0; i < 24; i++) {
        seen.push(await page.getByTestId('stat-checks').locator('.stat-detail').textContent());
        await page.waitForTimeout(250);
      }
      assert.deepEqual(seen.filter((t) => !/^[1-9][\d,]* in the last second/.test(t)), [], 'never 0 in the last second');
    } finally {
      running = false;
      await traffic;
    }
  });

  flow('bans: a client banned from the Bans tab is listed with its reason, and lifted after confirming', async (page) => {
    const value = `203.0.113.${100 + Math.floor(Math.random() * 100)}`;
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/lists`);
    await page.getByRole('tab', { name: /Bans/ }).click();
    await page.getByLabel('Value').fill(value);
    await page.getByLabel('Ban for').selectOption('10m');
    await page.getByLabel('Reason').fill('Credential stuffing');
    await page.getByRole('button', { name: 'Ban', exact: true }).click();
    const row = page.locator(`tr[data-ban="${value}"]`);
    await row.getByText('Credential stuffing').waitFor();
    await row.getByText(/in (9|10) minutes/).waitFor();
    const stored = (await adminApi(run.stack, 'GET', '/api/v1/bans')).body.bans.find((b) => b.value === value);
    assert.equal(stored.note, 'Credential stuffing');
    assert.ok(stored.expires_at, 'the ban has an end');
    assert.equal((await adminApi(run.stack, 'GET', '/api/v1/lists')).body.entries.filter((e) => e.value === value).length, 0, 'not a list entry');

    await page.getByRole('button', { name: `Lift the ban on ${value}` }).click();
    await page.getByRole('dialog', { name: 'Lift this ban?' }).getByRole('button', { name: 'Lift ban' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await adminApi(run.stack, 'GET', '/api/v1/bans')).body.bans.filter((b) => b.value === value).length, 0);
  });

  for (const [size, viewport] of [
    ['desktop', undefined],
    ['phone', PHONE],
  ]) {
    flow(`long list values and toasts stay inside their card and the screen (${size})`, async (page) => {
      const value = longValue(`deny-${size}`);
      const r = await adminApi(run.stack, 'POST', '/api/v1/lists', { list: 'denylist', value, note: 'long note '.repeat(20).trim() });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await signIn(page, run.stack.adminUrl);
      await page.goto(`${run.stack.adminUrl}/lists`);
      await page.getByRole('tab', { name: /Denylist/ }).click();
      const row = page.locator(`tr[data-entry="${value}"]`);
      await row.waitFor();
      await assertInside(page, row.getByRole('button', { name: `Remove ${value}` }), page.locator('.card').first(), 'the remove button');
      await assertInside(page, row.locator('code'), page.locator('.card').first(), 'the value');

      // Added in the UI, the long value's toast wraps and keeps its close button on screen.
      const added = longValue(`toast-${size}`);
      await page.getByLabel('Value').fill(added);
      await page.getByRole('button', { name: 'Add to denylist' }).click();
      const toast = page.locator('.toast', { hasText: 'Added' });
      await toast.waitFor();
      const close = await toast.getByRole('button', { name: 'Dismiss' }).boundingBox();
      const width = page.viewportSize().width;
      assert.ok(close.x >= 0 && close.x + close.width <= width, `the toast's close button is on screen (${close.x + close.width} of ${width})`);
      await assertInside(page, toast.getByRole('button', { name: 'Dismiss' }), toast, 'the toast close button');
    }, viewport);

    flow(`a 64-character rule id and a long path keep every rule's buttons inside the rules table and the screen (${size})`, async (page) => {
      const id = `${size}-${'x'.repeat(64)}`.slice(0, 64);
      await createRule(run.stack, baseRule(id, { match: { methods: ['GET'], path: `/api/${'segment/'.repeat(20)}*`, hosts: [], headers: {} } }));
      await signIn(page, run.stack.adminUrl);
      await page.goto(`${run.stack.adminUrl}/rules`);
      const card = page.locator('.card', { has: page.locator(`tr[data-rule="${id}"]`) });
      for (const row of await page.locator('tr[data-rule]').all()) {
        const ruleId = await row.getAttribute('data-rule');
        await assertInside(page, row.getByRole('button', { name: `Delete ${ruleId}` }), card, `the delete button of ${ruleId}`);
      }
      await page.goto(`${run.stack.adminUrl}/rules/${id}`);
      await page.getByTestId('rule-covers').waitFor();
      await assertInside(page, page.getByTestId('rule-covers'), page.locator('.facts'), 'what the rule covers');
    }, viewport);

    flow(`a long key on the Counters page keeps Refresh and Reset inside the card (${size})`, async (page) => {
      const id = uniqueId('counted');
      await createRule(run.stack, baseRule(id, { limit: 3 }));
      await signIn(page, run.stack.adminUrl);
      await page.goto(`${run.stack.adminUrl}/counters`);
      await page.getByLabel('Rule').selectOption(id);
      await page.getByLabel('Key').fill(longValue('user'));
      await page.getByRole('button', { name: 'Look up' }).click();
      await page.getByTestId('counter-remaining').waitFor();
      const card = page.locator('.card', { has: page.getByTestId('counter-remaining') });
      await assertInside(page, card.getByRole('button', { name: 'Refresh' }), card, 'Refresh');
      await assertInside(page, card.getByRole('button', { name: 'Reset counter' }), card, 'Reset counter');
    }, viewport);
  }

  flow('a used-up counter says when the client may send again, not "Not limited"', async (page) => {
    const id = uniqueId('used-up');
    await createRule(run.stack, baseRule(id, { limit: 2 }));
    await fireChecks(run.stack, id, '192.0.2.77', 2);
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/counters`);
    await page.getByLabel('Rule').selectOption(id);
    await page.getByLabel('Key').fill('192.0.2.77');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByTestId('counter-remaining').getByText('0', { exact: true }).waitFor();
    assert.notEqual((await page.getByTestId('counter-retry').textContent()).trim(), 'Not limited');
  });

  flow('is usable on a phone: the menu opens and every page renders', async (page) => {
    await signIn(page, run.stack.adminUrl);
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
    // A page that fits the screen does not scroll under the top bar.
    await page.getByRole('button', { name: 'Open menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Counters' }).click();
    await page.getByRole('heading', { name: 'Look up a client' }).waitFor();
    const extra = await page.evaluate(() => document.documentElement.scrollHeight - window.innerHeight);
    assert.ok(extra <= 0, `Counters fits the height (${extra}px too tall)`);
  }, PHONE);
});
