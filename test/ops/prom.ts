import { get } from 'node:http';

/** Prometheus text → map of `name{labels}` → value (comments and blank lines skipped). */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** GET http://<address>/metrics, the body as text. */
export function scrape(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(`http://${address}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}
