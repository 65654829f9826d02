/*
 * The overview against a real ratekitd and redis-server: with more rules
 * than a page of cards, every card carries its own figures, seeded from the
 * stored series; the headline figures count checks, each request once however
 * many rules decide it; and an
 * overview opened while the server cannot be reached says there are no
 * figures yet, not zeros "last received" now.
 */
import assert from 'node:assert/strict';
import { describe } from 'node:test';
import { adminApi, createRule, fireChecks, screenshot, signIn, statValue, suite } from './harness.js';

const run = suite();
const { flow } = run;

const RULES = 45;
const ruleId = (n) => `bulk-${String(n).padStart(2, '0')}`;

/* The figure before "allowed" on a rule's card. */
async function cardAllowed(page, id) {
  const text = await page.getByTestId(`rule-card-${id}`).locator('.rule-card-figures span').first().textContent();
  return text.replace(/allowed/, '').trim();
}

describe('overview', () => {
  flow(`with ${RULES} rules, the 40th rule's card shows its traffic from before the page opened, and the headline figures are named checks`, async (page) => {
    for (let n = 1; n <= RULES; n++) {
      await createRule(run.stack, {
        id: ruleId(n),
        match: { path: `/bulk/${n}/*` },
        key: ['ip'],
        algorithm: 'fixed_window',
        limit: 100,
        window_ms: 60000,
      });
    }
    // Traffic before the page opens: the card can only know it from the stored series.
    const decisions = await fireChecks(run.stack, ruleId(40), '203.0.113.40', 7);
    assert.equal(decisions.filter((d) => d.allowed).length, 7);
    await fireChecks(run.stack, ruleId(44), '203.0.113.44', 3);
    // Let the server publish those seconds.
    await new Promise((r) => setTimeout(r, 2500));

    await signIn(page, run.stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByTestId(`rule-card-${ruleId(RULES)}`).waitFor();
    assert.equal(await page.locator('[data-testid^="rule-card-bulk-"]').count(), RULES, 'a card for every rule');
    await page.waitForFunction((id) => {
      const card = document.querySelector(`[data-testid="rule-card-${id}"] .rule-card-figures strong`);
      return card && card.textContent.trim() === '7';
    }, ruleId(40), { timeout: 8000 });
    assert.equal(await cardAllowed(page, ruleId(44)), '3', 'the 44th card too');
    assert.equal(await cardAllowed(page, ruleId(41)), '0', 'a rule without traffic shows 0');

    // Traffic while the page is open reaches a card far down the page as well.
    await fireChecks(run.stack, ruleId(41), '203.0.113.41', 2);
    await page.waitForFunction((id) => {
      const card = document.querySelector(`[data-testid="rule-card-${id}"] .rule-card-figures strong`);
      return card && card.textContent.trim() === '2';
    }, ruleId(41), { timeout: 5000 });

    // The headline figures count checks (each request once), named so.
    const headline = page.getByTestId('stat-checks');
    await headline.getByText('Checks · 5 min').waitFor();
    await page.getByTestId('stat-denied').getByText(/% of checks$/).waitFor();
    assert.equal(await page.getByText('Rule decisions · 5 min').count(), 0);
    await page.getByTestId(`rule-card-${ruleId(40)}`).scrollIntoViewIfNeeded();
    await screenshot(page, 'overview-many-rules.png');
  });

  flow('5 requests that two rules each decide show as 5 checks in the headline, not 10', async (page) => {
    for (const [id, limit] of [['pair-wide', 100], ['pair-strict', 3]]) {
      await createRule(run.stack, {
        id,
        match: { path: '/pair/*' },
        key: ['ip'],
        algorithm: 'fixed_window',
        limit,
        window_ms: 3600000,
      });
    }
    await signIn(page, run.stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('.live-live').waitFor({ timeout: 5000 });
    // Let the seconds of the flows before settle into the figures read as "before".
    await new Promise((r) => setTimeout(r, 1500));
    const before = { checks: await statValue(page, 'stat-checks'), allowed: await statValue(page, 'stat-allowed'), denied: await statValue(page, 'stat-denied') };
    const statsBefore = (await adminApi(run.stack, 'GET', '/api/v1/stats?window=300')).body;
    const chart = page.getByTestId('traffic-chart');
    const chartDeniedBefore = Number(await chart.getAttribute('data-denied-sum'));

    const answers = [];
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${run.stack.dataUrl}/v1/check`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ request: { method: 'GET', path: '/pair/items', ip: '203.0.113.60' } }),
      });
      answers.push(await res.json());
    }
    assert.deepEqual(answers.map((a) => a.results.length), [2, 2, 2, 2, 2], 'both rules decide every request');
    assert.deepEqual(answers.map((a) => a.allowed), [true, true, true, false, false]);

    const want = { checks: before.checks + 5, allowed: before.allowed + 3, denied: before.denied + 2 };
    await page.waitForFunction(
      (w) => {
        const v = (t) => Number(document.querySelector(`[data-testid="${t}"] .stat-value`).textContent.replace(/[^\d]/g, ''));
        return v('stat-checks') === w.checks && v('stat-allowed') === w.allowed && v('stat-denied') === w.denied;
      },
      want,
      { timeout: 5000 },
    );
    // A second later it still says 5, though the rules made 10 decisions.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual({ checks: await statValue(page, 'stat-checks'), allowed: await statValue(page, 'stat-allowed'), denied: await statValue(page, 'stat-denied') }, want);
    const stats = (await adminApi(run.stack, 'GET', '/api/v1/stats?window=300')).body;
    const decisions = (s) => s.totals.allowed + s.totals.denied;
    assert.equal(decisions(stats) - decisions(statsBefore), 10, 'the rules decided each request twice');
    await page.getByTestId('stat-denied').getByText(/% of checks$/).waitFor();
    assert.equal(Number(await chart.getAttribute('data-denied-sum')), chartDeniedBefore + 2, 'the chart plots checks');
    await page.getByRole('heading', { name: 'Checks per second' }).waitFor();
    await screenshot(page, 'overview-checks.png');
  }, { width: 1440, height: 900 });

  flow('an overview opened while the server cannot be reached says there are no figures yet', async (page) => {
    await signIn(page, run.stack.adminUrl);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // From now on no API call gets through, as when the server is down.
    await page.route('**/api/v1/**', (route) => route.abort('connectionrefused'));
    await page.reload();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByText('No figures yet: the server cannot be reached.').waitFor({ timeout: 10000 });
    assert.equal(await page.getByText(/last received, at/).count(), 0, 'no time is named for figures never received');
    await page.getByTestId('stat-checks').getByText('Not live · none received').waitFor();
    assert.equal((await page.getByTestId('stat-checks').locator('.stat-value').textContent()).trim(), '—');
    await page.getByTestId('traffic-chart').getByText('Not live · no figures received yet').waitFor();
  });
});
