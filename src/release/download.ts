/**
 * Downloading a release artifact for the fetcher: conditional GET (ETag /
 * If-Modified-Since), streamed to a file while hashing, with a size limit, an
 * inactivity timeout and truncation detection. Also `file://` URLs (validator: size +
 * mtime), which make a shared folder or a local drop directory a release source.
 *
 * Global fetch (undici) rather than node:http: it follows redirects — GitHub release
 * assets answer 302 to a storage host — and, as the Fetch standard requires, drops the
 * Authorization header on a cross-origin redirect, which is both safer and what
 * presigned S3 targets need (they reject a second credential). node:http would need
 * our own redirect code to get that right.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HitlessError } from '../errors.js';
import { safeUrl } from '../text/url.js';

export interface DownloadOptions {
  url: string;
  headers: Record<string, string>;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Give up after this long without progress (no headers, or no bytes), in ms. */
  timeout: number;
  etag?: string | undefined;
  lastModified?: string | undefined;
  /** Where the body goes (created or truncated). */
  dest: string;
  /** Aborts the download (the fetcher's close()). */
  signal?: AbortSignal;
}

export type DownloadResult =
  | { status: 'not-modified' }
  | { status: 'downloaded'; sha256: string; bytes: number; etag?: string; lastModified?: string };

/** Why an abort happened, so the error names the right cause. */
class Watchdog {
  readonly controller = new AbortController();
  timedOut = false;
  #timer: NodeJS.Timeout | undefined;
  /** Taken off the fetcher's long-lived signal at stop(): one per download would pile up. */
  readonly #unlisten: () => void;
  constructor(private readonly ms: number, outer?: AbortSignal) {
    const onAbort = (): void => this.controller.abort(outer?.reason);
    outer?.addEventListener('abort', onAbort, { once: true });
    this.#unlisten = () => outer?.removeEventListener('abort', onAbort);
    this.kick();
  }
  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error('timeout'));
    }, this.ms);
  }
  stop(): void {
    clearTimeout(this.#timer);
    this.#unlisten();
  }
}

/**
 * The response's Last-Modified, unless it is weak: within a second of the response's own
 * Date (RFC 9110, 8.8.2.2), the file may have changed again in that second (an upload still
 * being written, or republished), and a conditional request with it would get 304 for bytes
 * never seen. Without a Date it is taken as it is.
 */
function strongLastModified(headers: Headers): string | undefined {
  const lastModified = headers.get('last-modified') ?? undefined;
  const date = Date.parse(headers.get('date') ?? '');
  if (lastModified === undefined || Number.isNaN(date)) return lastModified;
  const modified = Date.parse(lastModified);
  return Number.isNaN(modified) || date - modified < 1000 ? undefined : lastModified;
}

function timeoutError(url: string, ms: number, phase: string): HitlessError {
  return new HitlessError('ERR_FETCH_TIMEOUT', `${safeUrl(url)}: no ${phase} for ${ms} ms; gave up`, { details: { url: safeUrl(url) } });
}


/**
 * Downloads `opts.url` to `opts.dest` unless it is unchanged since the validators given.
 *
 * @example
 * const r = await download({ url, headers: {}, maxBytes: 100e6, timeout: 30_000, etag, dest: '/srv/app/releases/.hitless-fetch-1.tgz' });
 * if (r.status === 'downloaded') console.log(r.sha256, r.etag);
 */
export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  if (opts.url.startsWith('file:')) return downloadFile(opts);
  const dog = new Watchdog(opts.timeout, opts.signal);
  try {
    const headers: Record<string, string> = { 'accept-encoding': 'identity', ...opts.headers };
    if (opts.etag) headers['if-none-match'] = opts.etag;
    if (opts.lastModified) headers['if-modified-since'] = opts.lastModified;
    let res: Response;
    try {
      res = await fetch(opts.url, { headers, redirect: 'follow', signal: dog.controller.signal });
    } catch (err) {
      if (dog.timedOut) throw timeoutError(opts.url, opts.timeout, 'response');
      throw new HitlessError('ERR_FETCH_HTTP', `${safeUrl(opts.url)}: request failed: ${causeText(err)}`, { cause: err });
    }
    if (res.status === 304) {
      await res.body?.cancel();
      return { status: 'not-modified' };
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new HitlessError('ERR_FETCH_HTTP', `${safeUrl(opts.url)}: HTTP ${res.status} ${res.statusText}`.trim(), { details: { status: res.status } });
    }
    const declared = res.headers.get('content-length');
    const expected = declared === null ? undefined : Number(declared);
    if (expected !== undefined && expected > opts.maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw tooLarge(opts, expected);
    }
    const body = res.body;
    if (body === null) throw new HitlessError('ERR_FETCH_TRUNCATED', `${safeUrl(opts.url)}: HTTP 200 without a body`);
    const { sha256, bytes } = await save(body, opts, dog, expected);
    const lastModified = strongLastModified(res.headers);
    return {
      status: 'downloaded', sha256, bytes,
      ...(res.headers.get('etag') ? { etag: res.headers.get('etag')! } : {}),
      ...(lastModified !== undefined ? { lastModified } : {}),
    };
  } finally {
    dog.stop();
  }
}

function tooLarge(opts: DownloadOptions, bytes: number): HitlessError {
  return new HitlessError('ERR_FETCH_TOO_LARGE', `${safeUrl(opts.url)}: artifact is larger than maxBytes (${bytes} > ${opts.maxBytes}); raise fetch.maxBytes if it is right`, {
    details: { bytes, maxBytes: opts.maxBytes },
  });
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  return cause?.message ?? cause?.code ?? (err instanceof Error ? err.message : String(err));
}

async function save(body: ReadableStream<Uint8Array>, opts: DownloadOptions, dog: Watchdog, expected: number | undefined): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  const file = await open(opts.dest, 'w', 0o600);
  let bytes = 0;
  try {
    const reader = body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (dog.timedOut) throw timeoutError(opts.url, opts.timeout, 'data');
        if (opts.signal?.aborted) throw err;
        throw new HitlessError('ERR_FETCH_TRUNCATED', `${safeUrl(opts.url)}: download ended after ${bytes}${expected === undefined ? '' : ` of ${expected}`} bytes (${causeText(err)})`, {
          cause: err, details: { bytes, expected },
        });
      }
      if (chunk.done) break;
      dog.kick();
      bytes += chunk.value.byteLength;
      if (bytes > opts.maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(opts, bytes);
      }
      hash.update(chunk.value);
      await file.write(chunk.value);
    }
  } finally {
    await file.close();
  }
  if (expected !== undefined && bytes !== expected) {
    throw new HitlessError('ERR_FETCH_TRUNCATED', `${safeUrl(opts.url)}: download ended after ${bytes} of ${expected} bytes`, { details: { bytes, expected } });
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const path = fileURLToPath(opts.url);
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new HitlessError('ERR_FETCH_HTTP', `${opts.url}: no such file`, { details: { status: 404 } });
  }
  const etag = `"file-${st.size}-${Math.trunc(st.mtimeMs)}"`;
  if (opts.etag === etag) return { status: 'not-modified' };
  if (st.size > opts.maxBytes) throw tooLarge(opts, st.size);
  const hash = createHash('sha256');
  const file = await open(opts.dest, 'w', 0o600);
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path, opts.signal ? { signal: opts.signal } : {})) {
      bytes += (chunk as Buffer).length;
      if (bytes > opts.maxBytes) throw tooLarge(opts, bytes);
      hash.update(chunk as Buffer);
      await file.write(chunk as Buffer);
    }
  } finally {
    await file.close();
  }
  return { status: 'downloaded', sha256: hash.digest('hex'), bytes, etag };
}

/**
 * Reads the sha256 for `artifactUrl` from a `sha256sum`-format text: the only hash in
 * it, or the line naming the artifact's file name.
 *
 * @example
 * pickChecksum('3f9a…  app.tgz\n', 'https://x/app.tgz'); // '3f9a…'
 */
export function pickChecksum(text: string, artifactUrl: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const parsed = lines.map((l) => /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/.exec(l)).filter((m) => m !== null);
  let name = '';
  try {
    name = basename(new URL(artifactUrl).pathname);
  } catch { /* keep '' */ }
  const match = parsed.length === 1 ? parsed[0] : parsed.find((m) => m[2] !== undefined && basename(m[2]) === name);
  if (!match) {
    throw new HitlessError('ERR_FETCH_CHECKSUM', `no sha256 for ${name || 'the artifact'} in the checksum file (expected sha256sum format: "<64 hex>  <file>")`);
  }
  return match[1]!.toLowerCase();
}

/**
 * Fetches a small text (the sha256Url) with the same headers and timeout.
 *
 * @example
 * const sums = await fetchText('https://x/app.tgz.sha256', {}, 10_000);
 */
export async function fetchText(url: string, headers: Record<string, string>, timeout: number, signal?: AbortSignal): Promise<string> {
  if (url.startsWith('file:')) {
    const { readFile } = await import('node:fs/promises');
    return readFile(fileURLToPath(url), 'utf8');
  }
  const dog = new Watchdog(timeout, signal);
  try {
    const res = await fetch(url, { headers, signal: dog.controller.signal });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new HitlessError('ERR_FETCH_HTTP', `${safeUrl(url)}: HTTP ${res.status} ${res.statusText}`.trim(), { details: { status: res.status } });
    }
    const text = await res.text();
    if (text.length > 1 << 20) throw new HitlessError('ERR_FETCH_TOO_LARGE', `${safeUrl(url)}: checksum file larger than 1 MiB`);
    return text;
  } catch (err) {
    if (dog.timedOut) throw timeoutError(url, timeout, 'response');
    if (err instanceof HitlessError) throw err;
    throw new HitlessError('ERR_FETCH_HTTP', `${safeUrl(url)}: request failed: ${causeText(err)}`, { cause: err });
  } finally {
    dog.stop();
  }
}
