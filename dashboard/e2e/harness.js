/*
 * Starts a real redis-server and a real ratekitd on free loopback ports,
 * serving the built dashboard, and drives it in Debian's Chromium.
 * Everything started here is stopped by its PID.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const DIST = path.join(REPO, 'dashboard', 'dist');
// Pictures of the passing flows: build/screenshots, or docs/screenshots with
// `make screenshots` (RATEKIT_SCREENSHOTS), so that a test run leaves the tree as it was.
export const SCREENSHOTS = process.env.RATEKIT_SCREENSHOTS
  ? path.resolve(REPO, process.env.RATEKIT_SCREENSHOTS)
  : path.join(REPO, 'build', 'screenshots');
const RATEKITD = process.env.RATEKIT_BIN ? path.resolve(REPO, process.env.RATEKIT_BIN) : path.join(REPO, 'build', 'ratekitd');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const TOKEN = 'e2e-admin-token-0123456789abcdef';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, probe, timeoutMs, child, logFile) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) {
      const log = logFile && fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(`${what} exited with ${child.exitCode} during start-up\n${log}`);
    }
    try {
      if (await probe()) return;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

function portAnswers(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/* Starts redis-server and ratekitd; answers {adminUrl, dataUrl, stop()}. */
export async function startStack() {
  if (!fs.existsSync(RATEKITD)) throw new Error(`${RATEKITD} is missing: run \`make build/ratekitd\` at the repository root first`);
  if (!fs.existsSync(path.join(DIST, 'index.html'))) throw new Error(`${DIST}/index.html is missing: run \`npm run build\` in dashboard/ first`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ratekit-e2e-'));
  const [dataPort, adminPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const children = [];

  const redisLog = path.join(tmp, 'redis.log');
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp, '--logfile', redisLog], {
    stdio: 'ignore',
  });
  children.push(redis);
  await waitFor('redis-server', () => portAnswers(redisPort), 5000, redis, redisLog);

  const serverLog = path.join(tmp, 'ratekitd.log');
  const out = fs.openSync(serverLog, 'a');
  const server = spawn(RATEKITD, [], {
    env: {
      ...process.env,
      RATEKIT_LISTEN: `127.0.0.1:${dataPort}`,
      RATEKIT_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      RATEKIT_DB: path.join(tmp, 'r.db'),
      RATEKIT_ADMIN_TOKEN: TOKEN,
      RATEKIT_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      RATEKIT_DASHBOARD_DIR: DIST,
      RATEKIT_ENV: 'production',
    },
    stdio: ['ignore', out, out],
  });
  children.push(server);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const dataUrl = `http://127.0.0.1:${dataPort}`;
  await waitFor('ratekitd', async () => (await fetch(`${adminUrl}/`)).ok, 10000, server, serverLog);

  let stopped = false;
  return {
    adminUrl,
    dataUrl,
    serverLog,
    // Stops everything; again is a no-op (a test may stop the server under a page).
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const child of children.reverse()) {
        if (child.exitCode !== null) continue;
        child.kill('SIGTERM');
        const exited = await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(5000).then(() => false)]);
        if (!exited) child.kill('SIGKILL');
      }
      fs.closeSync(out);
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

/*
 * A fresh page at the given width. Uncaught exceptions and console errors
 * are collected in page.problems (failed loads of endpoints are left out:
 * the UI shows those itself).
 */
export async function newPage(browser, { width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(8000);
  return page;
}

/* Signs in through the form; unless told it should fail, waits for the signed-in frame. */
export async function signIn(page, baseUrl, token = TOKEN, { shouldFail = false } = {}) {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (!shouldFail) await page.locator('.shell').waitFor();
}

/* Calls the admin API directly (setting up a test, or checking what the UI did). */
export async function adminApi(stack, method, urlPath, body) {
  const res = await fetch(stack.adminUrl + urlPath, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: json };
}

export async function createRule(stack, rule) {
  const r = await adminApi(stack, 'POST', '/api/v1/rules', rule);
  if (r.status !== 201) throw new Error(`creating rule ${rule.id} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/* The number an overview stat card shows (its testid), digits only. */
export async function statValue(page, testId) {
  const text = await page.getByTestId(testId).locator('.stat-value').textContent();
  return Number(text.replace(/[^\d]/g, ''));
}

const EDGE_MARGIN_MS = 2000;

/*
 * A fixed window turns over on the clock (floor(now/window)*window): checks
 * that straddle that edge would see a fresh count. Before checks against a
 * fixed window of a minute to an hour, waits until EDGE_MARGIN_MS of it are
 * left at least.
 */
async function clearOfWindowEdge(stack, ruleId) {
  const r = await adminApi(stack, 'GET', `/api/v1/rules/${encodeURIComponent(ruleId)}`);
  const windowMs = r.body && r.body.algorithm === 'fixed_window' ? r.body.window_ms : 0;
  if (!(windowMs >= 60000 && windowMs <= 3600000)) return;
  const left = windowMs - (Date.now() % windowMs);
  if (left < EDGE_MARGIN_MS) await new Promise((done) => setTimeout(done, left + 50));
}

/* POST /v1/check on the data plane, n times, within one fixed window. */
export async function fireChecks(stack, rule, key, n) {
  await clearOfWindowEdge(stack, rule);
  const decisions = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${stack.dataUrl}/v1/check`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ rule, key, cost: 1 }),
    });
    decisions.push(await res.json());
  }
  return decisions;
}

export async function screenshot(page, name, options = {}) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, name), ...options });
}

/* A picture of one element (a card), in SCREENSHOTS. */
export async function screenshotOf(locator, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await locator.screenshot({ path: path.join(SCREENSHOTS, name) });
}

/*
 * A rule or token name for one flow: the name itself the first time (each
 * test file runs its own ratekitd, and the screenshots read like a real
 * setup), then name-2, name-3, ...
 */
const usedIds = new Map();
export function uniqueId(name) {
  const n = (usedIds.get(name) || 0) + 1;
  usedIds.set(name, n);
  return n === 1 ? name : `${name}-${n}`;
}

export function assertNoProblems(page) {
  assert.deepEqual(page.problems, [], 'the page logged errors');
}

/*
 * Declares one flow: a test on a fresh signed-out page of getBrowser(),
 * closed afterwards. On failure the page is saved as a screenshot under the
 * temp folder, named in the error.
 */
/*
 * One test file's stack and browser: started before its tests, stopped after
 * them. Answers { stack, flow }: stack once started; flow(name, fn, viewport)
 * as below, in that browser.
 */
export function suite() {
  let browser;
  const s = {
    stack: null,
    flow: (name, fn, viewport) => flow(() => browser, name, fn, viewport),
  };
  before(async () => {
    s.stack = await startStack();
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
    if (s.stack) await s.stack.stop();
  });
  return s;
}

export function flow(getBrowser, name, fn, viewport) {
  test(name, async () => {
    const page = await newPage(getBrowser(), viewport);
    try {
      await fn(page);
      assertNoProblems(page);
    } catch (err) {
      const dir = path.join(os.tmpdir(), 'ratekit-e2e-failures');
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      err.message += `\n(screenshot of the page: ${file})`;
      throw err;
    } finally {
      await page.context().close();
    }
  });
}

/* Signs out through the sidebar (opening the menu first on a narrow page). */
export async function signOut(page) {
  const menu = page.getByRole('button', { name: 'Open menu' });
  if (await menu.isVisible()) await menu.click();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
}

/* POST /v1/check on the data plane once; answers the decision. */
export async function checkOnce(stack, rule, key) {
  const [decision] = await fireChecks(stack, rule, key, 1);
  return decision;
}
