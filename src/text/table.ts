/**
 * Plain-text tables for `hitless status`: columns padded to their widest cell, no colour,
 * no borders, so the output greps and pastes cleanly.
 *
 * @example
 * renderTable([['WORKER', 'PID'], ['7.1', '1234']]);
 * // "WORKER  PID \n7.1     1234"
 */
export function renderTable(rows: string[][], gap = 2): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + gap))).join('').trimEnd())
    .join('\n');
}
