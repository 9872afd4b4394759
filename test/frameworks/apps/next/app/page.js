export const dynamic = 'force-dynamic';

export default function Page() {
  return <p>served by generation {process.env.HITLESS_GENERATION ?? 'standalone'}</p>;
}
