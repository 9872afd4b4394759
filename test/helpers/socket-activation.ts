/**
 * systemd's socket activation, played by python3 (no systemd here): bind and listen on
 * 127.0.0.1:0, put the socket at fd 3 with LISTEN_FDS=1 and LISTEN_FDNAMES=<fdName> (`http`
 * unless told), write `PORT <n>` to stderr, replace `{PORT}` in the arguments with that
 * port, then exec `argv` through a shell shim that sets LISTEN_PID to its own pid (the pid
 * that execs the program, as systemd sets it).
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SYSTEMD_FD3 = [
  'import os, socket, sys',
  's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128)',
  'os.dup2(s.fileno(), 3); os.set_inheritable(3, True)',
  'port = s.getsockname()[1]',
  'sys.stderr.write("PORT %d\\n" % port); sys.stderr.flush()',
  'os.environ.update(LISTEN_FDS="1", LISTEN_FDNAMES=sys.argv[1])',
  'args = [a.replace("{PORT}", str(port)) for a in sys.argv[2:]]',
  'os.execvp("sh", ["sh", "-c", "LISTEN_PID=$$ exec \\"$@\\"", "sh"] + args)',
].join('\n');

/** `argv` started as systemd would start a socket-activated service (needs python3); `fdName`: the socket's FileDescriptorName. */
export function spawnSocketActivated(argv: string[], cwd: string, fdName = 'http'): ChildProcess {
  return spawn('python3', ['-c', SYSTEMD_FD3, fdName, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}
