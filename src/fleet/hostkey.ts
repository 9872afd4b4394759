/**
 * What to tell a user whose ssh refused a host for its host key: ssh says only "Host key
 * verification failed.", and a deploy (BatchMode) has no one to ask. The advice names the
 * known_hosts file and the host as ssh itself resolves them (`ssh -G` with the deploy's own
 * options), not as hitless.json spells them: a `Host` alias from a config passed with
 * `-F` in `ssh.args` means nothing to ssh-keyscan, and a port may come from that config.
 */
import { spawn } from 'node:child_process';
import { shellQuote } from './scripts.js';
import { loginOptions } from './transport.js';
import type { FleetConfig, FleetHost } from './types.js';

/** What ssh resolved for a host (the `ssh -G` lines the advice needs). */
interface Resolved {
  hostname: string;
  port: number;
  knownHosts: string;
  /** A connection by hand can accept a new key only when ssh would ask (not `yes`, not BatchMode). */
  asks: boolean;
}

/**
 * The advice for a host whose ssh failed with `stderr`, asking ssh for its effective
 * configuration; undefined when `stderr` is not about the host key.
 *
 * @example
 * await hostKeyAdvice(host, config, 'Host key verification failed.');
 * // 'its host key is not in /home/me/.ssh/known_hosts (…); after checking it, add it with ssh-keyscan -p 2222 -H 10.0.0.13 >> /home/me/.ssh/known_hosts, …'
 */
export async function hostKeyAdvice(host: FleetHost, config: Pick<FleetConfig, 'sshArgs'>, stderr: string): Promise<string | undefined> {
  if (!isHostKeyFailure(stderr)) return undefined;
  return hostKeyMessage(host, config, stderr, await sshConfigOf(host, config));
}

/** ssh refused the host for its key (unknown or changed). */
function isHostKeyFailure(stderr: string): boolean {
  return /Host key verification failed/i.test(stderr);
}

/**
 * The advice from ssh's effective configuration for the host (`sshG`: the output of
 * `ssh -G`, empty when it could not be asked): the file ssh checked, and the commands
 * that fix it for the host name and port ssh connects to.
 *
 * @example
 * hostKeyMessage(host, { sshArgs: ['-F', 'cfg'] }, 'Host key verification failed.', 'hostname 10.0.0.13\nport 2222\n…');
 * // '… add it with ssh-keyscan -p 2222 -H 10.0.0.13 >> /home/me/.ssh/known_hosts, or connect once by hand (ssh -F cfg app3) and accept it'
 */
export function hostKeyMessage(host: FleetHost, config: Pick<FleetConfig, 'sshArgs'>, stderr: string, sshG: string): string | undefined {
  if (!isHostKeyFailure(stderr)) return undefined;
  const ssh = resolve(host, sshG);
  const file = shellWord(ssh.knownHosts);
  const scan = `ssh-keyscan ${ssh.port !== 22 ? `-p ${ssh.port} ` : ''}-H ${shellWord(ssh.hostname)} >> ${file}`;
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr)) {
    // known_hosts names a host on another port as [name]:port.
    const entry = ssh.port !== 22 ? `[${ssh.hostname}]:${ssh.port}` : ssh.hostname;
    return `its host key changed since ${ssh.knownHosts} recorded it: if the host was reinstalled, remove the old key (ssh-keygen -R ${shellWord(entry)} -f ${file}) and add the new one after checking it (${scan}); if it was not, stop: someone may be in the middle of the connection`;
  }
  // By hand with the deploy's own options, so the key lands in the file named here.
  const byHand = ['ssh', ...loginOptions(host), ...config.sshArgs, host.address].map(shellWord).join(' ');
  return `its host key is not in ${ssh.knownHosts} (ssh checks it, and a deploy has no one to ask), so this is a first connection: after checking the key with the host's owner, add it with ${scan}` +
    (ssh.asks ? `, or connect once by hand (${byHand}) and accept it` : '');
}

/** The `ssh -G` values the advice needs, with ssh's defaults where it could not be asked. */
function resolve(host: FleetHost, sshG: string): Resolved {
  const values = new Map<string, string>();
  for (const line of sshG.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) values.set(line.slice(0, space).toLowerCase(), line.slice(space + 1).trim());
  }
  const port = Number(values.get('port'));
  return {
    hostname: values.get('hostname') || host.address,
    port: Number.isInteger(port) && port > 0 ? port : host.port ?? 22,
    // UserKnownHostsFile may list several files; ssh-keyscan appends to the first.
    knownHosts: values.get('userknownhostsfile')?.split(/\s+/)[0] || '~/.ssh/known_hosts',
    asks: (values.get('stricthostkeychecking') ?? 'ask') === 'ask' && values.get('batchmode') !== 'yes',
  };
}

/** ssh's effective configuration for `host` (`ssh -G`, the deploy's own options included); '' when ssh cannot say. */
function sshConfigOf(host: FleetHost, config: Pick<FleetConfig, 'sshArgs'>): Promise<string> {
  const args = ['-G', ...loginOptions(host), ...config.sshArgs, '--', host.address];
  return new Promise((done) => {
    let out = '';
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', () => done(''));
    child.on('close', (code) => done(code === 0 ? out : ''));
  });
}

/** `value` as one shell word for a command shown to the user: bare when that is safe. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./~-]+$/.test(value) && !value.startsWith('~') ? value : value.startsWith('~/') ? `~/${shellWord(value.slice(2))}` : shellQuote(value);
}
