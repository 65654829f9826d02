/*
 * API tokens in the dashboard, against a real ratekitd and redis-server: a
 * token created in the UI signs in with its role, a viewer is told calmly
 * what its role cannot do, and a revoked token no longer signs in.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { TOKEN, adminApi, createRule, screenshot, signIn, signOut, suite, uniqueId } from './harness.js';

const run = suite();
const { flow } = run;

function rule(id) {
  return { id, description: 'Report downloads, per client IP', match: { path: '/api/*' }, key: ['ip'], algorithm: 'fixed_window', limit: 7, window_ms: 60000 };
}

async function openTokensPage(page) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API tokens' }).click();
  await page.getByRole('heading', { name: 'API tokens', level: 1 }).waitFor();
}

/* Creates a token through the dialog; answers the secret read from it. */
async function createTokenInUi(page, name, roleLabel) {
  await page.getByRole('button', { name: 'New token' }).first().click();
  const form = page.getByRole('dialog', { name: 'New API token' });
  await form.getByLabel('Name').fill(name);
  await form.getByRole('radio', { name: new RegExp(`^${roleLabel}`) }).check();
  await form.getByLabel('Expires').selectOption('30d');
  await form.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByRole('dialog', { name: 'Your new API token' });
  await shown.waitFor();
  await shown.getByText('You will not see it again').waitFor();
  return { dialog: shown, secret: await shown.getByTestId('new-token-secret').inputValue() };
}

describe('API tokens', () => {
  flow('a viewer token made in the UI reads rules, is refused saving one calmly, and stops working once revoked', async (page) => {
    const id = uniqueId('reports');
    const name = 'support-desk';
    await createRule(run.stack, rule(id));
    // Two more tokens, so the list shows the roles side by side.
    for (const [n, role] of [
      ['ci-deploy', 'editor'],
      ['grafana', 'viewer'],
    ]) {
      const r = await adminApi(run.stack, 'POST', '/api/v1/tokens', { name: n, role });
      assert.equal(r.status, 201);
      if (n === 'grafana') await fetch(`${run.stack.adminUrl}/api/v1/stats`, { headers: { Authorization: `Bearer ${r.body.token}` } });
    }

    await signIn(page, run.stack.adminUrl);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: run.stack.adminUrl });
    await openTokensPage(page);
    await page.locator('tr[data-token="ci-deploy"]').waitFor();

    const { dialog, secret } = await createTokenInUi(page, name, 'Viewer');
    assert.match(secret, /^rk_[0-9a-f]{12}_[0-9a-f]{64}$/, 'the secret is shown in full');
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await dialog.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'Copy put the secret on the clipboard');
    await screenshot(page, 'token-created.png');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await dialog.waitFor({ state: 'detached' });

    // Listed with its role, and the secret appears nowhere on the page or in the API's list.
    const row = page.locator(`tr[data-token="${name}"]`);
    await row.getByText('Viewer', { exact: true }).waitFor();
    assert.ok(!(await page.content()).includes(secret.slice(-64)), 'the secret is not on the page any more');
    const listed = (await adminApi(run.stack, 'GET', '/api/v1/tokens')).body.tokens.find((t) => t.name === name);
    assert.equal(listed.role, 'viewer');
    assert.ok(listed.expires_at, 'the expiry was stored');
    assert.ok(!JSON.stringify(listed).includes(secret.slice(-64)));
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'tokens.png');

    // Signed in as the viewer: the rules are there ...
    await signOut(page);
    await signIn(page, run.stack.adminUrl, secret);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Rules' }).click();
    await page.locator(`tr[data-rule="${id}"]`).waitFor();
    await page.getByTestId('signed-in-role').getByText('Signed in as viewer').waitFor();

    // ... but every control that changes one is disabled, with the role message, not refused after a click.
    assert.match(await page.getByTestId('role-notice').textContent(), /Your token's role cannot change rules\./);
    assert.ok(await page.getByRole('button', { name: 'New rule' }).isDisabled(), 'New rule is disabled');
    assert.ok(await page.getByRole('button', { name: 'Import' }).isDisabled(), 'Import is disabled');
    assert.ok(await page.getByRole('button', { name: `Edit ${id}` }).isDisabled(), 'Edit is disabled');
    assert.ok(await page.getByRole('button', { name: `Delete ${id}` }).isDisabled(), 'Delete is disabled');
    assert.ok(await page.getByRole('group', { name: `Mode of ${id}` }).getByRole('button', { name: 'Shadow' }).isDisabled(), 'the mode switch is disabled');
    await page.goto(`${run.stack.adminUrl}/rules/${id}/edit`);
    await page.waitForFunction(() => document.querySelector('.rule-form'));
    assert.match(await page.getByTestId('role-notice').textContent(), /Your token's role cannot change rules\./);
    assert.ok(await page.getByRole('button', { name: 'Save changes' }).isDisabled(), 'Save is disabled');
    assert.equal(await page.getByText('forbidden', { exact: true }).count(), 0, 'no error code is shown');
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).body.limit, 7, 'the rule did not change');

    // Overrides and Try it (a real check, counted against a key) too; and the tokens page says it is for admins.
    await page.goto(`${run.stack.adminUrl}/rules/${id}`);
    await page.getByRole('heading', { name: 'Per-key overrides' }).waitFor();
    assert.match(await page.locator('.overrides-card').getByTestId('role-notice').textContent(), /Your token's role cannot change overrides\./);
    assert.equal(await page.getByRole('button', { name: 'Save override' }).count(), 0);
    assert.ok(await page.getByRole('button', { name: 'Check' }).isDisabled(), 'Try it is disabled');
    await page.goto(`${run.stack.adminUrl}/lists`);
    await page.getByRole('tab', { name: /Bans/ }).click();
    assert.match(await page.getByTestId('role-notice').textContent(), /Your token's role cannot ban clients or lift bans\./);
    await openTokensPage(page);
    assert.match(await page.getByTestId('role-notice').textContent(), /Your token's role cannot see or manage API tokens\./);
    assert.equal(await page.getByRole('button', { name: 'New token' }).count(), 0);

    // Revoked by the admin, it no longer signs in.
    await signOut(page);
    await signIn(page, run.stack.adminUrl, TOKEN);
    await openTokensPage(page);
    await page.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByRole('dialog', { name: 'Revoke this token?' }).getByRole('button', { name: 'Revoke token' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await adminApi(run.stack, 'GET', '/api/v1/tokens')).body.tokens.filter((t) => t.name === name).length, 0);
    await signOut(page);
    await signIn(page, run.stack.adminUrl, secret, { shouldFail: true });
    await page.getByText('This token is not valid').waitFor();
    assert.equal(await page.locator('.shell').count(), 0, 'not signed in');
  });

  flow('an editor token may save a rule', async (page) => {
    const id = uniqueId('exports');
    await createRule(run.stack, rule(id));
    await signIn(page, run.stack.adminUrl);
    await openTokensPage(page);
    const { dialog, secret } = await createTokenInUi(page, uniqueId('deploy-bot'), 'Editor');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await signOut(page);
    await signIn(page, run.stack.adminUrl, secret);
    await page.goto(`${run.stack.adminUrl}/rules/${id}/edit`);
    await page.waitForFunction(() => document.querySelector('.rule-form'));
    await page.getByLabel('Limit', { exact: true }).fill('70');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(`**/rules/${id}`);
    assert.equal((await adminApi(run.stack, 'GET', `/api/v1/rules/${id}`)).body.limit, 70);
  });

  flow('Esc or the close button on a new token asks before the secret is gone, and a closed dialog gives the focus back', async (page) => {
    await signIn(page, run.stack.adminUrl);
    await openTokensPage(page);
    const { dialog, secret } = await createTokenInUi(page, uniqueId('nightly-job'), 'Viewer');
    await page.keyboard.press('Escape');
    const ask = dialog.getByTestId('discard-secret');
    await ask.getByText('You will not see this token again').waitFor();
    assert.equal(await dialog.getByTestId('new-token-secret').inputValue(), secret, 'the secret is still shown');
    await ask.getByRole('button', { name: 'Keep it open' }).click();
    assert.equal(await ask.count(), 0);
    await dialog.getByRole('button', { name: 'Close', exact: true }).click();
    await ask.getByRole('button', { name: 'Close, I have it' }).click();
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'New token', 'the focus is back on New token');

    // A confirmation closed with Cancel gives the focus back to the button that opened it.
    const row = page.locator('tr[data-token]').first();
    const name = await row.getAttribute('data-token');
    await row.getByRole('button', { name: `Revoke ${name}` }).click();
    await page.getByRole('dialog', { name: 'Revoke this token?' }).getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog', { name: 'Revoke this token?' }).waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), `Revoke ${name}`);
  });

  flow('the new-token dialog and the list fit a phone', async (page) => {
    await signIn(page, run.stack.adminUrl);
    await page.goto(`${run.stack.adminUrl}/tokens`);
    await page.getByRole('heading', { name: 'API tokens', level: 1 }).waitFor();
    const { dialog } = await createTokenInUi(page, uniqueId('on-call'), 'Viewer');
    const box = await dialog.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the dialog fits the width');
    await dialog.getByRole('button', { name: 'Done' }).click();
    await page.locator('tr[data-token]').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page fits the width (${overflow}px too wide)`);
  }, { width: 390, height: 844 });
});
