/**
 * A real nginx in front of hitless masters (the fleet's hosts, the hand-over and canary
 * tests' one master): `nginx -p <dir> -c <conf>` in the foreground (daemon off, master_process
 * on), an upstream keep-alive pool to the given addresses (HTTP/1.1, `Connection: ""`),
 * stopped and removed at the end. proxy_next_upstream is off, so a request a master drops is
 * a 502 the load client counts, not a retry on another upstream that would hide it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './free-port.js';
import { waitUntil } from './master.js';

export const noNginx: string | false = spawnSync('nginx', ['-v'], { stdio: 'ignore' }).status !== 0
  && 'nginx is not installed (Debian package nginx)';

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface NginxOptions {
  /** Idle upstream connections kept per nginx worker (`keepalive`), default 32. */
  keepalive?: number;
  /**
   * Never retire a pooled connection during a test (keepalive_requests 1000000 on both
   * sides, upstream keepalive_timeout 120 s): a connection opened during the test is then
   * one that a reload or canary closed, never nginx's own housekeeping.
   */
  longLived?: boolean;
}

/**
 * Starts nginx on 127.0.0.1:<free port> proxying to `upstreams` ("127.0.0.2:8080"); resolves
 * with its URL (no trailing slash).
 *
 * @example
 * const url = await startNginx(t, [master.address()], { keepalive: 64, longLived: true });
 */
export async function startNginx(t: TestContext, upstreams: string[], o: NginxOptions = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-nginx-'));
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${join(dir, k)};`).join('\n');
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
${temp}${o.longLived ? '\n  keepalive_requests 1000000;' : ''}
  upstream app {
${upstreams.map((u) => `    server ${u};`).join('\n')}
    keepalive ${o.keepalive ?? 32};${o.longLived ? '\n    keepalive_requests 1000000;\n    keepalive_timeout 120s;' : ''}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream off;
    }
  }
}
`);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  // nginx announces nothing when it is up; its listening socket accepting is the sign.
  await waitUntil(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}):\n${log}`);
    return connects(port);
  }, 'nginx listens');
  return `http://127.0.0.1:${port}`;
}
