/**
 * Signals and /proc reads for the processes the gateway started (php-cgi masters and their children).
 * A process that is already gone is what a kill wanted: ESRCH is never an error here.
 */
import fs from 'node:fs';

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGKILL to a whole process group: php-cgi calls setsid(), so a master's pid is its children's group id. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  signalPid(-pid, 'SIGKILL');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/** The parent pid from /proc, or 0 when the process is gone. */
export function parentOf(pid: number): number {
  const stat = readProc(pid, 'stat');
  // Fields after the command name, which may itself contain spaces and parentheses: state, then ppid.
  return stat === '' ? 0 : Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** The command line from /proc, arguments joined by spaces; '' when the process is gone. */
export function commandLine(pid: number): string {
  return readProc(pid, 'cmdline').replaceAll('\0', ' ');
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (err) {
    void err; // ENOENT: gone already, which callers read as ''
    return '';
  }
}
