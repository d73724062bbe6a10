'use strict';

// Drives the batch page in headless Chromium (Debian's package, through
// playwright-core with executablePath): choose photos, pick a preset and a
// background, start, wait for 100 %, read the thumbnails and reports,
// download the zip, take a screenshot. Used by test/page.test.js and by
// `make screenshot` (node test/page-driver.js OUT.png: a real pool, the
// samples).

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { REPO, PYTHON } = require('./helpers');

/** The flags of the issue: a quiet, sandboxless headless Chromium for CI. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function chromiumPath() {
  execFileSync('bash', [path.join(REPO, 'tests', 'setup', 'apt-ensure.sh'), 'chromium=chromium'], { stdio: 'inherit' });
  return execFileSync('bash', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
}

async function launch() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS });
}

/**
 * @param {import('playwright-core').Browser} browser
 * @param {string} url the page
 * @param {{files: string[], preset?: string, bgColor?: string, maxSize?: number, screenshot?: string, downloadTo?: string, timeoutMs?: number}} o
 */
async function runPage(browser, url, o) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  try {
    await page.goto(url);
    await page.setInputFiles('#files', o.files);
    if (o.preset) await page.selectOption('#preset', o.preset);
    if (o.bgColor) await page.fill('#bg', o.bgColor);
    if (o.maxSize !== undefined) await page.fill('#max-size', String(o.maxSize));
    await page.click('#start');
    const timeout = o.timeoutMs ?? 120_000;
    await page.waitForFunction(() => document.getElementById('percent').textContent === '100 %', null, { timeout });
    await page.waitForSelector('#download:not([hidden])', { timeout });
    // Every thumbnail loaded (a real image, not a broken one).
    await page.waitForFunction(() => [...document.querySelectorAll('.results img.thumb')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 30_000 });
    const state = await page.evaluate(() => ({
      percent: document.getElementById('percent').textContent,
      ariaNow: document.getElementById('bar').getAttribute('aria-valuenow'),
      status: document.getElementById('status').textContent,
      thumbs: [...document.querySelectorAll('.results img.thumb')].map((i) => ({ alt: i.alt, w: i.naturalWidth, h: i.naturalHeight })),
      reports: [...document.querySelectorAll('.results .report')].map((r) => [...r.querySelectorAll('li')].map((li) => `${li.className}: ${li.textContent}`)),
      errors: [...document.querySelectorAll('.results .code')].map((e) => e.textContent),
    }));
    // The bar's fill has eased to its full width (a CSS transition).
    await page.waitForFunction(() => document.getElementById('bar-fill').getBoundingClientRect().width === document.getElementById('bar').getBoundingClientRect().width, null, { timeout: 5000 });
    if (o.screenshot) {
      fs.mkdirSync(path.dirname(o.screenshot), { recursive: true });
      await page.screenshot({ path: o.screenshot, fullPage: true });
    }
    let zipPath = null;
    if (o.downloadTo) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      fs.mkdirSync(path.dirname(o.downloadTo), { recursive: true });
      await download.saveAs(o.downloadTo);
      zipPath = o.downloadTo;
    }
    return { ...state, zipPath, consoleErrors };
  } finally {
    await context.close();
  }
}

/** `make screenshot`: a real pool (u2netp), two samples as ID photos, out/page.png. */
async function main() {
  const out = path.resolve(process.argv[2] || path.join(REPO, 'out', 'page.png'));
  const express = require('express');
  const { createPool } = require('..');
  const { createBatchRouter } = require('../lib/express/batch-router');
  const pool = createPool({ python: PYTHON, size: 1 });
  const app = express();
  app.use(createBatchRouter({ remover: pool }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const browser = await launch();
  try {
    const url = `http://127.0.0.1:${/** @type {any} */ (server.address()).port}/`;
    const files = ['astronaut.jpg', 'chelsea.jpg'].map((f) => path.join(REPO, 'samples', f));
    const r = await runPage(browser, url, { files, preset: 'passport-35x45', bgColor: '#dfe8f5', screenshot: out, downloadTo: out.replace(/\.png$/, '.zip') });
    console.log(`${r.percent}, ${r.thumbs.length} thumbnails; screenshot ${path.relative(REPO, out)}, zip ${path.relative(REPO, r.zipPath)}`);
  } finally {
    await browser.close();
    await new Promise((r) => server.close(r));
    await pool.close();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { launch, runPage, CHROMIUM_ARGS };
