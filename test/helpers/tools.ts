/**
 * Optional system tools some tests drive (service managers, a second language, namespace
 * tools). `npm test` needs only Node and npm: a test whose tool is absent is skipped with
 * the reason shown in the report, and CI (.ci/run) installs them all so nothing is skipped
 * there.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The Debian package that brings each tool (for the skip message). */
const PACKAGE: Record<string, string> = {
  python3: 'python3',
  supervisord: 'supervisor',
  supervisorctl: 'supervisor',
  tini: 'tini',
  'systemd-socket-activate': 'systemd',
  'systemd-analyze': 'systemd',
  'systemd-notify': 'systemd',
  setpriv: 'util-linux',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  ip: 'iproute2',
  nginx: 'nginx',
  wrk: 'wrk',
  h2load: 'nghttp2-client',
  openssl: 'openssl',
  chromium: 'chromium',
  gunicorn: 'gunicorn',
};

/** Is `command` an executable file on PATH? (Looked up without running it.) */
export function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/**
 * A skip reason naming the tools that are missing, or false when all are installed.
 *
 * @example
 * test('supervisord runs the master', { skip: needs('supervisord', 'supervisorctl') }, async (t) => { … });
 */
export function needs(...commands: string[]): string | false {
  const absent = commands.filter((c) => !onPath(c));
  if (absent.length === 0) return false;
  const packages = [...new Set(absent.map((c) => PACKAGE[c] ?? c))];
  return `needs ${absent.join(', ')}, not installed (apt-get install ${packages.join(' ')})`;
}
