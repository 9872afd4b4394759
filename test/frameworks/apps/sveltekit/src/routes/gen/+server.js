// Which hitless generation answered: read at request time.
export function GET() {
  return new Response('ok\n', { headers: { 'x-generation': process.env.HITLESS_GENERATION ?? '' } });
}
