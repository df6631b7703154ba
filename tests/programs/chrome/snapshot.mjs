// Takes a heap snapshot of detached-dom.html in headless Chromium through the DevTools protocol
// (HeapProfiler.takeHeapSnapshot, as the Memory panel does) and writes it to OUT.heapsnapshot.
//   node snapshot.mjs OUT.heapsnapshot   (needs playwright-core and /usr/bin/chromium)
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const out = process.argv[2];
const page_url = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'detached-dom.html')).href;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--js-flags=--expose-gc'],
});
try {
  const page = await browser.newPage();
  await page.goto(page_url);
  await page.waitForFunction(() => window.ready === true);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('HeapProfiler.enable');
  await cdp.send('HeapProfiler.collectGarbage');
  const chunks = [];
  cdp.on('HeapProfiler.addHeapSnapshotChunk', (event) => chunks.push(event.chunk));
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false, captureNumericValue: false });
  writeFileSync(out, chunks.join(''));
  const version = await browser.version();
  process.stdout.write(`${version}\n`);
} finally {
  await browser.close();
}
