/**
 * A bench-only preload (`node --import build/bench/v8-nice.js app.js`, the latency scenario's
 * hitless-v8-nice target): keeps this process's V8 helper threads (named V8Worker: concurrent
 * compilation, concurrent GC marking and sweeping) at nice 19, so a new worker's tier-up and
 * GC helpers yield to its own main thread. Linux keeps a nice value per thread and
 * setpriority(PRIO_PROCESS, tid) sets one thread; the master's boot priority sets every
 * thread back at READY, so this re-applies it every 100 ms.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

const NICE = 19;

function lowerHelpers(): void {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return; // not Linux
  }
  for (const tid of tids) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'V8Worker') continue;
      if (getPriority(Number(tid)) !== NICE) setPriority(Number(tid), NICE);
    } catch {
      // the thread ended
    }
  }
}

lowerHelpers();
setInterval(lowerHelpers, 100).unref();
