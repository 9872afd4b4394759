/**
 * A self-signed certificate for 'localhost' and 127.0.0.1, committed (valid for 100 years)
 * so the TLS tests need no openssl at test time. A test key: never use it for anything else.
 * Made with: openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost
 *   -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -days 36500
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { root } from '../../helpers/master.js';

export function selfSignedCert(_t?: TestContext): { key: Buffer; cert: Buffer } {
  const dir = join(root, 'test', 'fixtures', 'tls');
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
}
