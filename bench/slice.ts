/**
 * A bench-only preload (`SLICE_NS=300000 node --import build/bench/slice.js app.js`, an arm of
 * bench/passes.ts): a worker's main thread asks the scheduler for a custom time slice of
 * SLICE_NS nanoseconds (Linux 6.12 and later, EEVDF: `sched_setattr` with `sched_runtime`
 * for SCHED_OTHER, 0.1–100 ms), keeping its nice value. Node cannot make that system call,
 * so perl's `syscall` makes it for this process's main thread (its tid is the pid). Only in
 * workers (HITLESS_GENERATION set), once at start. Measured without a gain:
 * bench/notes-latency.md, "Shorter scheduler slices".
 */
import { spawnSync } from 'node:child_process';
import { getPriority } from 'node:os';

/** x86_64's sched_setattr; struct sched_attr, version 0 (48 bytes), as perl packs it. */
const SET_SLICE = 'my ($t, $s, $n) = @ARGV; my $a = pack("L L Q l L Q Q Q", 48, 0, 0, $n + 0, 0, $s + 0, 0, 0); syscall(314, $t + 0, $a, 0) == 0 or die "sched_setattr: $!\\n";';

const ns = process.env.SLICE_NS;
if (ns !== undefined && process.env.HITLESS_GENERATION !== undefined) {
  const r = spawnSync('perl', ['-e', SET_SLICE, String(process.pid), ns, String(getPriority())], { encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`bench/slice: ${r.stderr || r.error?.message}`);
}
