'use strict';

// index.d.ts and express.d.ts as a TypeScript user meets them: a consumer file
// (test/types/consumer.ts) must compile under `tsc --noEmit --strict`, and each
// of its `@ts-expect-error` mistakes must be an error.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');

const run = promisify(execFile);
const TSC = require.resolve('typescript/bin/tsc');

test('tsc --noEmit --strict accepts the consumer and rejects each mistake in it', { timeout: 180_000 }, async () => {
  const project = path.join(__dirname, 'types', 'tsconfig.json');
  const r = await run(process.execPath, [TSC, '-p', project], { cwd: path.join(__dirname, '..') }).catch((e) => e);
  assert.equal(r.code ?? 0, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
