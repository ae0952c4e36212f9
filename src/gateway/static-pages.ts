/**
 * The viewer page and the streamer console as the gateway serves them: the files `npm run build`
 * writes to dist/web, read once at start-up and kept in memory (a few hundred KB), so a request is a
 * map lookup and never touches the disk. A gateway started without a build still runs; its page
 * routes answer 404 with a text that says how to build them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` writes the pages, relative to the package root. */
export const DEFAULT_PAGES_DIR = join('dist', 'web');

/** The page routes and the HTML file each serves. */
export const PAGE_ROUTES: Readonly<Record<string, string>> = { '/': 'index.html', '/console': 'console.html' };

/** Content-Security-Policy of every page response: no inline script, no other origin, WebSockets to this one. */
export const PAGES_CSP = "default-src 'self'; connect-src 'self' ws: wss:";

/** Hashed build assets never change under their name; HTML is revalidated on every load. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

export interface StaticFile {
  body: Buffer;
  contentType: string;
  cacheControl: string;
}

export interface StaticPages {
  /** The file for a request path (`/`, `/console`, `/assets/viewer-1a2b.js`), or undefined. */
  lookup(path: string): StaticFile | undefined;
  /** Whether a build was found; without one every page route answers `missingText`. */
  readonly built: boolean;
  readonly missingText: string;
}

/** The package root: the nearest folder above this module that holds package.json (works from src/ and dist/src/). */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return from;
    dir = parent;
  }
  return dir;
}

/** Reads every file of the build once. `dir` defaults to `<package root>/dist/web`. */
export function loadStaticPages(dir: string | null = null): StaticPages {
  const root = dir ?? join(packageRoot(), DEFAULT_PAGES_DIR);
  const missingText = `The Roomcast pages are not built on this gateway (looked in ${root}). Run \`npm run build\` (npm start does), or set ROOMCAST_PAGES_DIR.\n`;
  const files = new Map<string, StaticFile>();
  if (existsSync(join(root, PAGE_ROUTES['/']!))) {
    for (const file of listFiles(root)) {
      const path = `/${relative(root, file).split(sep).join('/')}`;
      const contentType = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
      const cacheControl = path.startsWith('/assets/') ? IMMUTABLE : REVALIDATE;
      files.set(path, { body: readFileSync(file), contentType, cacheControl });
    }
    for (const [route, html] of Object.entries(PAGE_ROUTES)) {
      const file = files.get(`/${html}`);
      if (file) files.set(route, file);
    }
  }
  return {
    built: files.size > 0,
    missingText,
    lookup: (path) => files.get(path),
  };
}

function listFiles(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listFiles(path));
    else found.push(path);
  }
  return found;
}
