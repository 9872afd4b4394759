// The advice for a host ssh refused for its host key: the host name, port and known_hosts
// file as ssh resolves them (`ssh -G`), so the commands work for a `Host` alias of a config
// passed with -F in ssh.args. No connection is made: `ssh -G` only prints the configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostKeyAdvice, hostKeyMessage } from '../../src/fleet/hostkey.js';
import type { FleetHost } from '../../src/fleet/types.js';

const UNKNOWN = 'Host key verification failed.\n';
const CHANGED = '@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@\nHost key verification failed.\n';

function alias(extra: Partial<FleetHost> = {}): FleetHost {
  return { name: 'app1', address: 'app1', user: undefined, port: undefined, identity: undefined, appDir: '/srv/app', health: undefined, ...extra };
}

/** `ssh -G -F /work/ssh_config app1` where that config says `Host app1`, `HostName 127.0.0.1`, `Port 18810`. */
const aliasSshG = [
  'host app1', 'user root', 'hostname 127.0.0.1', 'port 18810', 'batchmode no', 'stricthostkeychecking ask',
  'userknownhostsfile /work/ssh/known_hosts /work/ssh/known_hosts2', 'identityfile ~/.ssh/id_ed25519', '',
].join('\n');

test('host-key advice for a Host alias: ssh-keyscan gets the hostname and port ssh -G resolved, and the connection by hand carries the deploy\'s own ssh options', () => {
  const args = ['-F', '/work/ssh_config'];
  assert.equal(hostKeyMessage(alias(), { sshArgs: args }, UNKNOWN, aliasSshG),
    'its host key is not in /work/ssh/known_hosts (ssh checks it, and a deploy has no one to ask), so this is a first connection: after checking the key with the host\'s owner, ' +
    'add it with ssh-keyscan -p 18810 -H 127.0.0.1 >> /work/ssh/known_hosts, or connect once by hand (ssh -F /work/ssh_config app1) and accept it');

  const own = alias({ address: '127.0.0.1', user: 'root', port: 18810, identity: '/keys/deploy key' });
  const extra = ['-o', 'UserKnownHostsFile=/work/ssh/known_hosts'];
  assert.match(hostKeyMessage(own, { sshArgs: extra }, UNKNOWN, aliasSshG) ?? '',
    /connect once by hand \(ssh -l root -p 18810 -i '\/keys\/deploy key' -o IdentitiesOnly=yes -o UserKnownHostsFile=\/work\/ssh\/known_hosts 127\.0\.0\.1\) and accept it$/);
});

test('host-key advice: no "connect by hand" where ssh would not ask either (StrictHostKeyChecking yes, BatchMode); port 22 needs no -p', () => {
  const strict = aliasSshG.replace('stricthostkeychecking ask', 'stricthostkeychecking true');
  assert.match(hostKeyMessage(alias(), { sshArgs: [] }, UNKNOWN, strict) ?? '', /add it with ssh-keyscan -p 18810 -H 127\.0\.0\.1 >> \/work\/ssh\/known_hosts$/);
  const batch = aliasSshG.replace('batchmode no', 'batchmode yes').replace('port 18810', 'port 22');
  assert.match(hostKeyMessage(alias(), { sshArgs: [] }, UNKNOWN, batch) ?? '', /add it with ssh-keyscan -H 127\.0\.0\.1 >> \/work\/ssh\/known_hosts$/);
  assert.equal(hostKeyMessage(alias(), { sshArgs: [] }, 'Permission denied (publickey).', aliasSshG), undefined);
});

test('host-key advice for a changed key: ssh-keygen -R names the entry ssh looked up ([hostname]:port), not the alias', () => {
  assert.match(hostKeyMessage(alias(), { sshArgs: [] }, CHANGED, aliasSshG) ?? '',
    /^its host key changed since \/work\/ssh\/known_hosts recorded it: if the host was reinstalled, remove the old key \(ssh-keygen -R '\[127\.0\.0\.1\]:18810' -f \/work\/ssh\/known_hosts\) and add the new one after checking it \(ssh-keyscan -p 18810 -H 127\.0\.0\.1 >> \/work\/ssh\/known_hosts\)/);
});

test('host-key advice asks the real ssh -G with the deploy\'s options: an alias defined in a config passed with -F', { skip: spawnSync('ssh', ['-V'], { stdio: 'ignore' }).status !== 0 && 'ssh is not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hitless-hostkey-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'ssh_config');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(config, `Host app1 app2\n  HostName 127.0.0.1\n  Port 18810\n  UserKnownHostsFile ${knownHosts}\n`);
  const advice = await hostKeyAdvice(alias(), { sshArgs: ['-F', config] }, UNKNOWN);
  assert.equal(advice,
    `its host key is not in ${knownHosts} (ssh checks it, and a deploy has no one to ask), so this is a first connection: after checking the key with the host's owner, ` +
    `add it with ssh-keyscan -p 18810 -H 127.0.0.1 >> ${knownHosts}, or connect once by hand (ssh -F ${config} app1) and accept it`);
});
