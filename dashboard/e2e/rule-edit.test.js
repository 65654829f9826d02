/*
 * The rule edit form against a real ratekitd and redis-server: a save sends
 * only the fields edited, so a change another admin made meanwhile stays,
 * and the form says that the rule changed and what; a window typed without
 * a unit is refused beside its field.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { adminApi, createRule, screenshot, signIn, suite, uniqueId } from './harness.js';

const run = suite();
const { flow } = run;

function rule(id, extra = {}) {
  return {
    id,
    description: 'Search endpoint, per client IP',
    match: { path: '/search' },
    key: ['ip'],
    algorithm: 'fixed_window',
    limit: 20,
    window_ms: 60000,
    mode: 'enforce',
    ...extra,
  };
}

async function stored(id) {
  const r = await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`);
  assert.equal(r.status, 200);
  return r.body;
}

async function openForm(page, id) {
  await signIn(page, run.stack.adminUrl);
  await page.goto(`${run.stack.adminUrl}/rules/${id}/edit`);
  await page.waitForFunction(() => document.querySelector('.rule-form'));
}

describe('rule edit form', () => {
  flow('saving a description edit keeps the mode and limit another admin changed meanwhile, and says they changed', async (page) => {
    const id = uniqueId('search');
    await createRule(run.stack, rule(id));
    await openForm(page, id);
    assert.equal(await page.getByLabel('Limit', { exact: true }).inputValue(), '20');
    // Let the form's event stream open before the other admin's change.
    await page.waitForTimeout(1500);

    const other = await adminApi(run.stack, 'PATCH', `/api/v1/rules/${id}`, { mode: 'off', limit: 999 });
    assert.equal(other.status, 200, JSON.stringify(other.body));

    const notice = page.getByTestId('rule-changed-notice');
    await notice.getByText('This rule was changed since you opened it').waitFor({ timeout: 5000 });
    await notice.getByText('Mode is now off').waitFor();
    await notice.getByText('Limit is now 999').waitFor();
    await notice.getByRole('button', { name: 'Reload the form' }).waitFor();
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'rule-edit-changed.png');

    await page.getByLabel('Description').fill('Search endpoint, per client IP (tuned)');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    const after = await stored(id);
    assert.equal(after.description, 'Search endpoint, per client IP (tuned)', 'the edit was saved');
    assert.equal(after.mode, 'off', 'the other admin’s mode stays');
    assert.equal(after.limit, 999, 'the other admin’s limit stays');
  });

  flow('editing a field someone else changed meanwhile asks before replacing theirs; Reload the form takes theirs', async (page) => {
    const id = uniqueId('search');
    await createRule(run.stack, rule(id));
    await openForm(page, id);
    await page.waitForTimeout(1500);
    assert.equal((await adminApi(run.stack, 'PATCH', `/api/v1/rules/${id}`, { limit: 999 })).status, 200);
    await page.getByTestId('rule-changed-notice').waitFor({ timeout: 5000 });

    await page.getByLabel('Limit', { exact: true }).fill('30');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText(/Limit was also changed by someone else/).waitFor();
    assert.equal((await stored(id)).limit, 999, 'not replaced before a second save');

    await page.getByRole('button', { name: 'Reload the form' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="rule-changed-notice"]') === null);
    assert.equal(await page.getByLabel('Limit', { exact: true }).inputValue(), '999', 'the form holds the stored rule');

    await page.getByLabel('Limit', { exact: true }).fill('40');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    assert.equal((await stored(id)).limit, 40);
  });

  flow('a window typed as a bare number is refused with the forms it takes, and nothing is saved', async (page) => {
    const id = uniqueId('search');
    await createRule(run.stack, rule(id));
    await openForm(page, id);
    const windowField = page.getByLabel('Window', { exact: true });
    await windowField.fill('60');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Add a unit: 60 alone is not a duration. Use 500ms, 30s, 1m, 1h or 1d.').waitFor();
    assert.equal(await windowField.getAttribute('aria-invalid'), 'true');
    assert.equal((await stored(id)).window_ms, 60000, 'the window is as it was');
    assert.equal((await stored(id)).version, 1, 'nothing was saved');

    await windowField.fill('60s');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    const after = await stored(id);
    assert.equal(after.window_ms, 60000);
  });
});
