/**
 * A real OpenSSH server for the fleet tests: started by the test on 127.0.0.1 and an unused
 * port, with a throw-away host key and client key, and stopped at the end. The client side
 * trusts exactly that host key (a known_hosts file of its own), so nothing touches the
 * machine's ~/.ssh.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { freePort } from '../helpers/free-port.js';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => existsSync(p));

/** Why the ssh tests cannot run here, or false when they can. */
export const noSsh: string | false =
  (!SSHD && 'sshd is not installed (Debian package openssh-server)')
  || (spawnSync('ssh', ['-V'], { stdio: 'ignore' }).status !== 0 && 'ssh is not installed (Debian package openssh-client)')
  || (spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error !== undefined && 'ssh-keygen is not installed (Debian package openssh-client)')
  || (process.getuid?.() !== 0 && 'sshd needs root here (it logs in as the user running the tests and needs /run/sshd)');

/** A port nobody listens on right now, on `host`. */

export interface Sshd {
  port: number;
  /** Private key the client logs in with. */
  key: string;
  knownHosts: string;
  /** ssh arguments that make the client use only this test's files. */
  clientArgs: string[];
}

/** Starts sshd -D on 127.0.0.1:<free port>; resolves once it listens; stops it after the test. */
export async function startSshd(t: TestContext): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sshd-'));
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const key = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hitless-test-host', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'hitless-test-client', '-f', key]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`));
  const port = await freePort();
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(`${hostKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
  const config = join(dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PidFile none', 'StrictModes no', 'UsePAM no', 'PermitRootLogin prohibit-password',
    'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes',
    // Ansible copies files over sftp.
    'Subsystem sftp internal-sftp', 'LogLevel INFO', '',
  ].join('\n'));
  // sshd refuses to start without its privilege separation folder (Debian creates it at
  // boot), and each connection's pre-auth child chroots into it. It is made here when
  // missing and left in place: another test suite's sshd on this machine may be using it
  // (removed under it, that sshd resets every new connection during key exchange).
  const privsep = '/run/sshd';
  if (!existsSync(privsep)) mkdirSync(privsep, { mode: 0o755, recursive: true });
  const child = spawn(SSHD as string, ['-D', '-e', '-f', config, '-h', hostKey], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) resolve();
    });
    void exited.then(() => reject(new Error(`sshd exited before listening:\n${log}`)));
  });
  const clientArgs = ['-F', '/dev/null', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes'];
  return { port, key, knownHosts, clientArgs };
}

export { freePort };
