/*
 * Importing a ruleset in the dashboard, against a real ratekitd and
 * redis-server: a dry run first says what the import does, naming the rules
 * it deletes (and counting the overrides a document with overrides sets),
 * and nothing changes until the button that says so is pressed.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { adminApi, createRule, screenshot, signIn, suite } from './harness.js';

const run = suite();
const { flow } = run;

function rule(id, limit = 10) {
  return { id, match: { path: `/${id}/*` }, key: ['ip'], algorithm: 'fixed_window', limit, window_ms: 60000 };
}

async function storedIds() {
  return (await adminApi(run.stack, 'GET', '/api/v1/rules')).body.rules.map((r) => r.id).sort();
}

describe('import', () => {
  flow('an import that deletes rules says how many and which, and deletes them only once confirmed', async (page) => {
    for (const id of ['reports', 'exports', 'uploads']) await createRule(run.stack, rule(id));
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules`);
    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import rules' });
    await dialog.getByLabel('Or paste the JSON document').fill(JSON.stringify({ rules: [rule('reports', 25), rule('search')] }));
    await dialog.getByRole('button', { name: 'Review the import of 2 rules' }).click();

    const preview = dialog.getByTestId('import-preview');
    await preview.getByText('This import deletes 2 rules').waitFor();
    await preview.getByText('It creates 1 rule, updates 1 and deletes 2.', { exact: false }).waitFor();
    assert.deepEqual((await dialog.getByTestId('import-deletes').locator('li').allTextContents()).sort(), ['exports', 'uploads']);
    assert.deepEqual(await storedIds(), ['exports', 'reports', 'uploads'], 'the review changed nothing');
    await screenshot(page, 'import-review.png');

    // Editing the document asks again: the button never runs an import not reviewed.
    await dialog.getByLabel('Or paste the JSON document').fill(JSON.stringify({ rules: [rule('reports', 25), rule('search'), rule('exports')] }));
    assert.equal(await preview.count(), 0, 'the review of the earlier text is gone');
    await dialog.getByRole('button', { name: 'Review the import of 3 rules' }).click();
    await preview.getByText('This import deletes 1 rule').waitFor();
    await dialog.getByRole('button', { name: 'Import and delete 1 rule' }).click();
    await page.getByText('Imported: 1 created, 1 updated, 1 deleted').waitFor();
    assert.deepEqual(await storedIds(), ['exports', 'reports', 'search']);
  });

  flow('an import that deletes nothing says so before importing', async (page) => {
    const ids = await storedIds();
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules`);
    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import rules' });
    await dialog.getByLabel('Or paste the JSON document').fill(JSON.stringify({ rules: [...ids.map((id) => rule(id)), rule('downloads')] }));
    await dialog.getByRole('button', { name: /^Review the import/ }).click();
    await dialog.getByTestId('import-preview').getByText('Ready to import').waitFor();
    await dialog.getByRole('button', { name: `Import ${ids.length + 1} rules` }).click();
    await page.getByText('Imported: 1 created').waitFor();
    assert.deepEqual(await storedIds(), [...ids, 'downloads'].sort());
  });

  flow('an export brings its overrides, and an import that drops one says so first', async (page) => {
    await adminApi(run.stack, 'PUT', '/api/v1/rules/downloads/overrides/user%3A42', { limit: 50, note: 'partner' });
    const { body: exported } = await adminApi(run.stack, 'GET', '/api/v1/rules/export');
    assert.deepEqual(exported.overrides.map((o) => [o.rule, o.key, o.limit]), [['downloads', 'user:42', 50]]);

    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/rules`);
    await page.getByRole('button', { name: 'Import' }).click();
    const dialog = page.getByRole('dialog', { name: 'Import rules' });
    const doc = { ...exported, overrides: [{ rule: 'reports', key: 'user:7', limit: 3 }] };
    await dialog.getByLabel('Or paste the JSON document').fill(JSON.stringify(doc));
    await dialog.getByRole('button', { name: /^Review the import/ }).click();
    const preview = dialog.getByTestId('import-preview');
    await preview.getByText('This import deletes 1 override').waitFor();
    await preview.getByText("The overrides become the document's: it creates 1, updates 0 and deletes 1.", { exact: false }).waitFor();
    const overridesOf = async (id) => (await adminApi(run.stack, 'GET', `/api/v1/rules/${id}/overrides`)).body.overrides.map((o) => o.key);
    assert.deepEqual(await overridesOf('downloads'), ['user:42'], 'the review changed nothing');
    const confirm = dialog.getByRole('button', { name: 'Import and delete 1 override' });
    assert.match(await confirm.getAttribute('class'), /btn-danger/, 'a deletion is confirmed by a danger button');
    await page.waitForTimeout(300); // the button's colour transition, for the screenshot
    await screenshot(page, 'import-review-overrides.png');
    await confirm.click();
    await page.getByText('overrides: 1 created, 0 updated, 1 deleted', { exact: false }).waitFor();
    assert.deepEqual(await overridesOf('downloads'), []);
    assert.deepEqual(await overridesOf('reports'), ['user:7']);
  });
});
