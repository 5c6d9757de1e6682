// Test fixtures: `stack` (a private redis-server + rt-server + demo backend per
// test, see stack.mjs) and `openPage` (a page in its own browser context, so two
// pages behave like two visitors). Options per test file: test.use({stackOptions}).
import { test as base, expect } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';
import { startStack } from './stack.mjs';

export { expect };

export const test = base.extend({
  stackOptions: [{}, { option: true }],

  stack: async ({ stackOptions }, use, testInfo) => {
    const stack = await startStack({ ...stackOptions, name: testInfo.title });
    try {
      await use(stack);
    } finally {
      await stack.stop();
      // With a sanitizer build (make e2e-asan) any report fails the test.
      const rtLog = path.join(stack.dir, 'rt-server.log');
      const report = fs.existsSync(rtLog) && /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/.test(fs.readFileSync(rtLog, 'utf8'));
      if (report || testInfo.status !== testInfo.expectedStatus) {
        for (const f of ['rt-server.log', 'backend.log', 'redis.log']) {
          const file = path.join(stack.dir, f);
          if (fs.existsSync(file)) await testInfo.attach(f, { path: file, contentType: 'text/plain' });
        }
      } else if (!process.env.RT_E2E_KEEP) {
        fs.rmSync(stack.dir, { recursive: true, force: true });
      }
      if (report) throw new Error(`sanitizer report in ${rtLog} (attached)`);
    }
  },

  openPage: async ({ browser, stack }, use, testInfo) => {
    const contexts = [];
    const errors = [];
    // `context`: more browser-context options (a phone: isMobile, hasTouch, deviceScaleFactor).
    await use(async (urlPath, { viewport, context: more = {} } = {}) => {
      const context = await browser.newContext({ ...(viewport ? { viewport } : {}), ...more });
      contexts.push(context);
      const page = await context.newPage();
      page.on('pageerror', (err) => errors.push(`${urlPath}: ${err.message}`));
      await page.goto(stack.baseUrl + urlPath);
      return page;
    });
    for (const c of contexts) await c.close();
    // An uncaught exception in a page is a bug even when the assertions passed.
    expect(errors, 'uncaught errors in the pages').toEqual([]);
  },
});
