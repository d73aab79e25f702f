import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Debian's Chromium, headless; .ci/run installs it (apt-get install chromium). Every page of it reports CSP violations (takeCspViolations). */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  // browser.newPage() goes through newContext() too.
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (options) => {
    const context = await newContext(options);
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'} in ${event.documentURI}`));
    });
    context.on('console', (message) => {
      if (message.type() === 'error' && message.text().startsWith('CSP violation: ')) cspViolations.push(message.text());
    });
    return context;
  };
  return browser;
}

const cspViolations: string[] = [];

/** The Content-Security-Policy violations any page reported since the last call (the GUI must cause none). */
export function takeCspViolations(): string[] {
  return cspViolations.splice(0);
}

export const artifactsDir = new URL('../../../test/artifacts/', import.meta.url).pathname;
fs.mkdirSync(artifactsDir, { recursive: true });
