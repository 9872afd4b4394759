// Which hitless generation answered: read at request time (server code sees the real env).
export const dynamic = 'force-dynamic';

export function GET() {
  return new Response('ok\n', { headers: { 'x-generation': process.env.HITLESS_GENERATION ?? '' } });
}
