/**
 * A Roomcast all-in-one (the built CLI, as `npm start` runs it) for the page scripts: free ports on
 * 127.0.0.1, a known secret and API key, and what it printed (the page URLs) parsed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
export const SECRET = 'pages-script-secret-that-is-long-enough';
export const API_KEY = 'pages-script-api-key';

export async function startAllInOne(extraEnv = {}) {
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run npm run build');
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('ROOMCAST_')));
  Object.assign(env, {
    ROOMCAST_WS_PORT: '0', ROOMCAST_GATEWAY_HTTP_PORT: '0', ROOMCAST_API_PORT: '0', ROOMCAST_WS_HOST: '127.0.0.1',
    ROOMCAST_API_HOST: '127.0.0.1', ROOMCAST_JWT_SECRET: SECRET, ROOMCAST_API_KEYS: API_KEY, ROOMCAST_LOG_LEVEL: 'warn', ...extraEnv,
  });
  const child = spawn(process.execPath, [CLI, 'all-in-one'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up guide:\n${output}`)), 20_000);
    child.stdout.on('data', () => { if (output.includes('Streamer console:')) { clearTimeout(timer); resolve(); } });
    child.once('exit', (code) => reject(new Error(`all-in-one exited with ${code}:\n${output}`)));
  });
  const field = (pattern) => {
    const match = pattern.exec(output);
    if (!match) throw new Error(`not printed: ${pattern}`);
    return match[1];
  };
  const apiUrl = field(/HTTP API:\s+(http:\/\/\S+)\/v1\/rooms/);
  return {
    viewerUrl: field(/^Viewer page: (\S+)$/m),
    consoleUrl: field(/^Streamer console: (\S+)$/m),
    wsUrl: field(/WebSocket:\s+(ws:\/\/\S+)/),
    apiUrl,
    async api(method, path, body) {
      const response = await fetch(`${apiUrl}${path}`, {
        method, headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return JSON.parse(text);
    },
    stop() {
      child.kill('SIGINT');
      return new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}
