/**
 * A URL as it may be shown: scheme, host and path, without credentials or the query string
 * (a presigned S3 or GCS URL carries its credentials there). Shared by the reload diff
 * (config/keys.ts) and the fetcher's messages (release/download.ts).
 *
 * @example
 * safeUrl('https://user:pw@s3.example/app.tgz?X-Amz-Signature=…'); // 'https://s3.example/app.tgz?…'
 */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<bad url>';
  }
}
