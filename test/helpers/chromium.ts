/**
 * A real browser for end-to-end tests: Debian's Chromium, headless, driven over the Chrome
 * DevTools Protocol (CDP) with the `ws` client, nothing else. It runs as root in CI, hence
 * --no-sandbox; in its own process group and profile folder, both removed when the test ends.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';

export interface BrowserPage {
  /** Evaluates `expression` in the page, awaits the promise it gives, returns its value (JSON). */
  evaluate<T>(expression: string): Promise<T>;
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

/** One CDP connection: commands by id, events to listeners by name. */
class Cdp {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Map<string, Listener[]>();

  constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string }; sessionId?: string };
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`CDP: ${m.error.message}`));
        else p?.resolve(m.result ?? {});
      } else if (m.method) {
        for (const l of this.listeners.get(m.method) ?? []) l(m.params ?? {}, m.sessionId);
      }
    });
    // Chromium killed at the test's end resets the connection: the waiting commands fail
    // (on 'close'), the reset itself is no error of the test.
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('CDP connection closed'));
      this.pending.clear();
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** Resolves with the next event `method` of `sessionId`. */
  once(method: string, sessionId: string): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const l: Listener = (params, session) => {
        if (session !== sessionId) return;
        this.listeners.set(method, (this.listeners.get(method) ?? []).filter((x) => x !== l));
        resolve(params);
      };
      this.listeners.set(method, [...(this.listeners.get(method) ?? []), l]);
    });
  }
}

/** Starts Chromium (cleanup registered on `t`) and resolves with its DevTools WebSocket URL. */
async function launch(t: TestContext): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'hitless-chromium-'));
  const args = [
    '--headless=new',
    '--no-sandbox',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    '--no-first-run',
    '--no-default-browser-check',
    // Nothing but the test's own traffic: no update checks, no field trials, no sync.
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    // Containers give /dev/shm 64 MB; Chromium then crashes on big pages.
    '--disable-dev-shm-usage',
    '--disable-gpu',
    'about:blank',
  ];
  // detached: its own process group, so the renderer, GPU and utility processes go with it.
  const child = spawn('chromium', args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (child.exitCode === null && child.signalCode === null) await exited;
    rmSync(profile, { recursive: true, force: true });
  });
  let stderr: string | undefined = '';
  child.stderr.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stderr.on('data', (chunk: string) => {
      if (stderr === undefined) return; // read on, so Chromium never blocks on a full pipe
      stderr += chunk;
      const url = /DevTools listening on (ws:\/\/\S+)\r?\n/.exec(stderr)?.[1];
      if (url === undefined) return;
      stderr = undefined;
      resolve(url);
    });
    void exited.then(() => reject(new Error(`chromium exited before listening for DevTools:\n${(stderr ?? '').slice(-4000)}`)));
  });
}

/**
 * Opens `url` in a new tab of a fresh headless Chromium and resolves once its load event fired.
 *
 * @example
 * const page = await openPage(t, master.url('/'));
 * const title = await page.evaluate<string>('document.title');
 */
export async function openPage(t: TestContext, url: string): Promise<BrowserPage> {
  const socket = new WebSocket(await launch(t), { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  t.after(() => socket.terminate());
  await new Promise<void>((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const cdp = new Cdp(socket);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
  await cdp.send('Page.enable', {}, sessionId);
  const loaded = cdp.once('Page.loadEventFired', sessionId);
  const nav = (await cdp.send('Page.navigate', { url }, sessionId)) as { errorText?: string };
  if (nav.errorText) throw new Error(`Chromium could not open ${url}: ${nav.errorText}`);
  await loaded;
  return {
    async evaluate<T>(expression: string): Promise<T> {
      const r = (await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId)) as {
        result: { value?: unknown };
        exceptionDetails?: { text: string; exception?: { description?: string } };
      };
      if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
      return r.result.value as T;
    },
  };
}
