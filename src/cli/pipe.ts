/**
 * The reader of the CLI's output going away (`hitless reload | head -4`, `hitless status
 * --watch | head -1`): Node reports a write into a closed pipe as an 'error' event (EPIPE),
 * which, unhandled, ends the process with a stack trace and exit 1, even after a reload
 * that went live. Client commands guard stdout and stderr instead: later writes are
 * dropped, a command that reports an outcome still exits with it, and one that would
 * write forever (`--watch`, `logs -f`) ends, told by {@link onOutputClosed}.
 */
const closedListeners = new Set<() => void>();
let closed = false;

function onError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE' || closed) {
    if (!closed) {
      closed = true;
      for (const fn of closedListeners) fn();
    }
    return;
  }
  throw err;
}

/** Guards stdout and stderr of a client command (not the master's: it guards its own). */
export function guardOutput(): void {
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
}

/**
 * Calls `fn` once stdout's reader is gone; returns the function that unregisters it.
 *
 * @example
 * const off = onOutputClosed(() => ac.abort());
 */
export function onOutputClosed(fn: () => void): () => void {
  if (closed) {
    queueMicrotask(fn);
    return () => {};
  }
  closedListeners.add(fn);
  return () => closedListeners.delete(fn);
}
