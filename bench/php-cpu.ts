/**
 * Gateway CPU time per request for PHP hello and a 100 KB PHP page, with a fast client (wrk on loopback): what
 * response buffering costs when no client is slow. Runs the gateway in this process and reads process.cpuUsage()
 * around a wrk run. Usage: node --import tsx bench/php-cpu.ts [seconds] [yaml lines added under php:]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from '../test/support/gateway.js';

// Asynchronous: the gateway serves wrk from this same process.
const run = promisify(execFile);

const seconds = Number(process.argv[2] ?? 5);
const extra = process.argv[3] ?? '';
const site = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-cpu-'));
fs.writeFileSync(path.join(site, 'hello.php'), '<?php echo "hello";');
fs.writeFileSync(path.join(site, 'page100k.php'), '<?php echo str_repeat("<p>lorem ipsum dolor sit amet</p>\\n", 2925);');
const g = await startGateway(`php:\n  worker_count: 2\n${extra}`, { docroot: site });
try {
  for (const script of ['hello.php', 'page100k.php']) {
    const url = `${g.base}/${script}`;
    await run('wrk', ['-t1', '-c8', '-d1s', url]); // warm-up: opcache, JIT of the hot paths
    const cpu0 = process.cpuUsage();
    const { stdout: out } = await run('wrk', ['-t1', '-c8', `-d${seconds}s`, url]);
    const cpu = process.cpuUsage(cpu0);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    const us = (cpu.user + cpu.system) / requests;
    console.log(`${script}: ${requests} requests, ${(requests / seconds).toFixed(0)} rps, gateway CPU ${us.toFixed(1)} µs/request`);
  }
} finally {
  await g.stop();
  fs.rmSync(site, { recursive: true, force: true });
}
